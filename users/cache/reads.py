"""L2 reads coalesced: the reads asked for in one turn of a worker's event loop go to Redis as one
MGET.

Under load most of an L2 hit is redis-py's own work per command (the pool, packing, parsing,
the timeout) and a round trip: 32 readers that arrive together now share one of each. A reader
alone waits one turn of the loop more, a few microseconds. MGET is atomic, so each reader's
answer and generation are still read together.
"""
import asyncio
import weakref
from typing import Any

from users.cache.connection import redis_call, redis_client
from users.cache.keys import user_cache_key, user_generation_key

# Readers per MGET at most: a burst larger than this starts another batch at once.
MAX_BATCH = 128

_Batch = list[tuple[int, asyncio.Future]]


class ReadBatcher:
    """The batch each event loop of a process is filling."""

    def __init__(self) -> None:
        self._batches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch]" = weakref.WeakKeyDictionary()
        self._running: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def read(self, user_id: int) -> asyncio.Future:
        """A future of (stored answer or None, generation or None) for `user_id`, from the next MGET
        of this loop; it holds the RedisError if Redis failed."""
        loop = asyncio.get_running_loop()
        batch = self._batches.get(loop)
        if batch is None or len(batch) >= MAX_BATCH:
            batch = self._batches[loop] = []
            task = loop.create_task(self._read_batch(loop, batch))  # runs after the readers already queued
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        future = loop.create_future()
        batch.append((user_id, future))
        return future

    async def _read_batch(self, loop: asyncio.AbstractEventLoop, batch: _Batch) -> None:
        if self._batches.get(loop) is batch:
            del self._batches[loop]  # later readers start the next batch
        await _read(batch)


async def _read(batch: _Batch) -> None:
    keys = [key for user_id, _ in batch for key in (user_cache_key(user_id), user_generation_key(user_id))]
    try:
        values: list[Any] = await redis_call(lambda: redis_client().mget(keys))
    except asyncio.CancelledError:  # the worker is stopping
        for _, future in batch:
            future.cancel()
        raise
    except Exception as exc:  # each reader decides what a failure means
        for _, future in batch:
            if not future.done():  # a reader that was cancelled left
                future.set_exception(exc)
        return
    for index, (_, future) in enumerate(batch):
        if not future.done():
            future.set_result((values[2 * index], values[2 * index + 1]))
