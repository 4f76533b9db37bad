"""Each worker's sender of invalidation messages: from its event loop, coalesced.

The writer's thread queues its ids and waits on a plain future until the group message is out,
so that when a write is answered every worker has been told, without an `async_to_sync` hop per
write. The ids queued while a send is in flight go out together in the next one: one send in
flight per worker, so a burst of writes cannot flood the listeners' channels.
"""
import asyncio
import concurrent.futures
import os
import uuid
from typing import Any

from channels.layers import get_channel_layer

from users.cache.connection import _once_more_async
from users.cache.keys import INVALIDATION_GROUP, INVALIDATION_MESSAGE

_origin: tuple[int, str] | None = None


def worker_origin() -> str:
    """This process's name in its messages: unique per process, also after a fork."""
    global _origin
    if _origin is None or _origin[0] != os.getpid():
        _origin = (os.getpid(), uuid.uuid4().hex)
    return _origin[1]


def invalidation_message(ids: list[int]) -> dict[str, Any]:
    # The writer's process emptied its own L1 after the commit; its listener skips the echo,
    # which would only drop entries stored since from the new row.
    return {"type": INVALIDATION_MESSAGE, "ids": ids, "origin": worker_origin()}


class Broadcaster:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids: set[int] = set()
        self._waiters: list[concurrent.futures.Future] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name="user-cache-broadcaster")

    async def stop(self) -> None:
        """Send what is queued, then stop; later invalidations are sent by their callers."""
        self._loop = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._ids:
            await self._send()

    def send(self, user_ids: list[int]) -> concurrent.futures.Future | None:
        """Queue ids from any thread but the loop's; the future resolves once they are sent (or
        holds the error). None where no worker loop runs: the caller sends the message itself."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return None
        sent: concurrent.futures.Future = concurrent.futures.Future()
        loop.call_soon_threadsafe(self._queue, user_ids, sent)
        return sent

    def _queue(self, user_ids: list[int], sent: concurrent.futures.Future) -> None:
        self._ids.update(user_ids)
        self._waiters.append(sent)
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._send()

    async def _send(self) -> None:
        ids, self._ids = sorted(self._ids), set()
        waiters, self._waiters = self._waiters, []
        try:
            await _once_more_async(
                lambda: get_channel_layer().group_send(INVALIDATION_GROUP, invalidation_message(ids))
            )
        except asyncio.CancelledError:
            self._ids.update(ids)  # stop() sends them
            self._waiters.extend(waiters)
            raise
        except Exception as exc:  # RedisError, OSError, a timeout: nothing may kill the sender
            for waiter in waiters:
                waiter.set_exception(exc)
        else:
            for waiter in waiters:
                waiter.set_result(None)


broadcaster = Broadcaster()
