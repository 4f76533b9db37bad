"""Each worker's sender of invalidation messages and heartbeats, on its event loop.

A writer queues its ids and waits until the group message is out, so that when a write is
answered every worker has been told. The ids queued while a send is in flight go out together in
the next one: one send in flight per worker, so a burst of writes cannot flood the listeners'
channels.

Every message names its sender (`origin`) and numbers it (`seq`, consecutive per process), so a
listener that misses one sees the gap. When no write needs a message, an empty one goes out every
quarter of USER_CACHE_MAX_STALENESS: the heartbeat. Coming back to its own sender through the
group, it proves that everything sent before it was received (each channel is a FIFO).
"""
import asyncio
import itertools
import os
import threading
import time
import uuid
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings

from users.cache.connection import _once_more_async
from users.cache.keys import INVALIDATION_GROUP, INVALIDATION_MESSAGE

_origin: tuple[int, str, Any] | None = None
_origin_lock = threading.Lock()


def _this_process() -> tuple[int, str, Any]:
    global _origin
    with _origin_lock:
        if _origin is None or _origin[0] != os.getpid():  # also after a fork
            _origin = (os.getpid(), uuid.uuid4().hex, itertools.count(1))
        return _origin


def worker_origin() -> str:
    """This process's name in its messages."""
    return _this_process()[1]


def invalidation_message(ids: list[int], *, heartbeats: bool = False) -> dict[str, Any]:
    """The next message of this process: the writer's process emptied its own L1 already, so its
    listener only takes the proof of freshness from it (`sent_at`, this process's clock).
    `heartbeats`: the sender is a worker's broadcaster, so its silence means something."""
    _, origin, sequence = _this_process()
    with _origin_lock:
        seq = next(sequence)
    return {"type": INVALIDATION_MESSAGE, "ids": ids, "origin": origin, "seq": seq, "sent_at": time.monotonic(),
            "heartbeats": heartbeats}


class Broadcaster:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids: set[int] = set()
        self._waiters: list[asyncio.Future] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The worker's event loop, while this broadcaster runs on it."""
        loop = self._loop
        return loop if loop is not None and loop.is_running() else None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = self._loop.create_task(self._run(), name="user-cache-broadcaster")

    async def stop(self) -> None:
        """Send what is queued, then stop; later invalidations are sent by their callers.

        The sender is asked to stop by a flag, and cancelled only if it does not within a send's
        bound: channels-redis can swallow a CancelledError (seen when Redis had just restarted),
        and a lost cancel left the sender sending heartbeats forever.
        """
        self._loop = None
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            done, _ = await asyncio.wait({task}, timeout=settings.USER_CACHE_MAX_STALENESS + 0.5)
            if not done:
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
        if self._ids:
            await self._send()

    async def send_async(self, user_ids: list[int], timeout: float) -> None:
        """Queue ids on this worker's loop (the edge's writes, and sync writers through `run_sync`):
        returns once the ids are sent, raises what the send raised, or TimeoutError after `timeout`
        seconds. On any other loop (shell, Celery) the message is sent at once."""
        if self._loop is not asyncio.get_running_loop():  # no broadcaster on this loop: send it here
            message = invalidation_message(user_ids)
            await asyncio.wait_for(
                _once_more_async(lambda: get_channel_layer().group_send(INVALIDATION_GROUP, message)), timeout
            )
            return
        sent = self._loop.create_future()
        self._queue(user_ids, sent)
        async with asyncio.timeout(timeout):
            await sent

    def heartbeat_now(self) -> None:
        """Send a heartbeat without waiting for the interval (a listener that just joined)."""
        loop = self._loop
        if loop is not None and loop.is_running() and self._wake is not None:
            loop.call_soon_threadsafe(self._wake.set)

    def _queue(self, user_ids: list[int], sent: asyncio.Future) -> None:
        self._ids.update(user_ids)
        self._waiters.append(sent)
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        interval = settings.USER_CACHE_MAX_STALENESS / 4
        while not self._stopping:
            try:
                async with asyncio.timeout(interval):  # no task of its own, unlike wait_for
                    await self._wake.wait()
            except TimeoutError:
                pass  # nothing to send: a heartbeat
            self._wake.clear()
            if not self._stopping:
                await self._send()

    async def _send(self) -> None:
        ids, self._ids = sorted(self._ids), set()
        waiters, self._waiters = self._waiters, []
        message = invalidation_message(ids, heartbeats=True)
        try:
            # A hung Redis must not hold the sender: the writers' waits and the heartbeat lapse.
            await asyncio.wait_for(
                _once_more_async(lambda: get_channel_layer().group_send(INVALIDATION_GROUP, message)),
                settings.USER_CACHE_MAX_STALENESS,
            )
        except asyncio.CancelledError:
            self._ids.update(ids)  # stop() sends them
            self._waiters.extend(waiters)
            raise
        except Exception as exc:  # RedisError, OSError, a timeout: nothing may kill the sender
            for waiter in waiters:
                if not waiter.done():  # an asyncio waiter that timed out is cancelled already
                    waiter.set_exception(exc)
        else:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)


broadcaster = Broadcaster()
