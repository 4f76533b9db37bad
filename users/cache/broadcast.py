"""Each worker's sender of invalidation messages, on its event loop.

A writer queues its ids and waits until the group message is out, so that when a write is
answered every worker has been told. The ids queued while a send is in flight go out together in
the next one: one send in flight per worker, so a burst of writes cannot flood the listeners'
channels.

Every group message, from any process, takes the next number of one count kept in Redis
(`send_to_group`): a write costs one INCR and one message per worker, and a listener that misses
a message finds the hole in the numbers it received (users/cache/receipts.py). Nothing is sent
while nobody writes: each listener proves its own channel drained by a message to itself.
"""
import asyncio
from typing import Any

from channels.layers import get_channel_layer

from users.cache.connection import retry_once
from users.cache.keys import INVALIDATION_COUNT, INVALIDATION_GROUP, INVALIDATION_MESSAGE
from users.runtime import current

# The longest a numbered message may take to reach every channel: after it, a number that did
# not arrive is given up as lost (users/cache/receipts.py).
SEND_TIMEOUT = 1.0


def worker_origin() -> str:
    """This process's name in its messages."""
    return current().origin


def invalidation_message(ids: list[int]) -> dict[str, Any]:
    """A message naming users to forget; the writer's process emptied its own L1 already."""
    return {"type": INVALIDATION_MESSAGE, "ids": ids, "origin": worker_origin()}


async def send_to_group(message: dict[str, Any]) -> None:
    """Number `message` with the next value of the count, then send it to every worker's channel.
    A number taken and never delivered (a send cut short, a full channel) is a hole that the
    listeners see; the count lives beside the channels, so it is lost only with them."""
    layer = get_channel_layer()
    number = await layer.connection(0).incr(INVALIDATION_COUNT)
    await layer.group_send(INVALIDATION_GROUP, {**message, "number": number})


async def read_count() -> int:
    """How many numbers were taken so far."""
    return int(await get_channel_layer().connection(0).get(INVALIDATION_COUNT) or 0)


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
        and a lost cancel left the sender running forever.
        """
        self._loop = None
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            done, _ = await asyncio.wait({task}, timeout=SEND_TIMEOUT + 0.5)
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
            await asyncio.wait_for(retry_once(lambda: send_to_group(message)), timeout)
            return
        sent = self._loop.create_future()
        self._queue(user_ids, sent)
        async with asyncio.timeout(timeout):
            await sent

    def _queue(self, user_ids: list[int], sent: asyncio.Future) -> None:
        self._ids.update(user_ids)
        self._waiters.append(sent)
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if not self._stopping:
                await self._send()

    async def _send(self) -> None:
        ids, self._ids = sorted(self._ids), set()
        waiters, self._waiters = self._waiters, []
        message = invalidation_message(ids)
        try:
            # A hung Redis must not hold the sender: the writers' waits lapse, the ids are resent.
            await asyncio.wait_for(retry_once(lambda: send_to_group(message)), SEND_TIMEOUT)
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
