"""Calls made in one turn of a worker's event loop, run as one: the L2 reads of a turn share one
MGET (`users.cache.reads`), its misses one `SELECT ... WHERE id = ANY(...)` (`users.cache.loader`),
its L2 stores one pipeline (`users.cache.shared`).

Under load most of a cache call is the client's own work per command (a pooled connection, packing,
parsing, a wake-up) and a round trip: the 32 requests that arrive together share one of each. A
caller alone waits one turn of the loop more, a few microseconds. Nothing waits for a batch to
fill: the batch is sent at the next turn, whatever it holds.
"""
import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

K = TypeVar("K")
R = TypeVar("R")

# Callers per batch at most: a burst larger than this starts another batch at once.
MAX_BATCH = 128


class TurnBatcher(Generic[K, R]):
    """`run` called once per turn of each event loop with the keys asked for in that turn, in their
    order, returning one result per key. With `unique`, a key asked for twice in a turn is sent once
    (a storm of misses on one profile is one row read) and each caller gets the result."""

    def __init__(self, run: Callable[[list[K]], Awaitable[Sequence[R]]], *, unique: bool = False,
                 max_batch: int = MAX_BATCH) -> None:
        self._run = run
        self._unique = unique
        self._max_batch = max_batch
        self._batches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[tuple[K, asyncio.Future]]]" = (
            weakref.WeakKeyDictionary())
        self._running: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def submit(self, key: K) -> "asyncio.Future[R]":
        """A future of `key`'s result from the next batch of this loop; it holds the exception if
        the batch failed. A caller that is cancelled leaves the others of its batch alone."""
        loop = asyncio.get_running_loop()
        batch = self._batches.get(loop)
        if batch is None or len(batch) >= self._max_batch:
            batch = self._batches[loop] = []
            task = loop.create_task(self._send(loop, batch))  # runs after the callers already queued
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        future = loop.create_future()
        batch.append((key, future))
        return future

    async def _send(self, loop: asyncio.AbstractEventLoop, batch: list[tuple[K, asyncio.Future]]) -> None:
        if self._batches.get(loop) is batch:
            del self._batches[loop]  # later callers start the next batch
        keys = [key for key, _ in batch]
        sent = list(dict.fromkeys(keys)) if self._unique else keys  # type: ignore[arg-type]
        try:
            results: Sequence[Any] = await self._run(sent)
        except asyncio.CancelledError:  # the worker is stopping
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # each caller decides what a failure means
            for _, future in batch:
                if not future.done():  # a caller that was cancelled left
                    future.set_exception(exc)
            return
        if self._unique:
            by_key = dict(zip(sent, results))
            results = [by_key[key] for key in keys]  # type: ignore[index]
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)
