"""Each worker's invalidation listener, run by the ASGI lifespan: it applies other workers'
invalidations to L1 and keeps L1 off whenever it may have missed one."""
import asyncio
import logging
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from users.cache.broadcast import worker_origin
from users.cache.invalidation import invalidate_users
from users.cache.keys import INVALIDATION_GROUP
from users.cache.local import LocalCache, local_cache

logger = logging.getLogger("users.cache")

REJOIN_INTERVAL = 3600.0  # well inside the channel layer's group_expiry (86400 s)
STARTUP_JOIN_TIMEOUT = 2.0


class InvalidationListener:
    """Joins the group, applies invalidations to L1, and empties L1 whenever Redis breaks.

    While not joined, L1 stays off: a worker that may miss messages must not serve from memory.
    """

    def __init__(self, cache: LocalCache) -> None:
        self.cache = cache
        self.joined = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._channel: str | None = None

    async def start(self, timeout: float = STARTUP_JOIN_TIMEOUT) -> None:
        """Start listening; wait a bounded time for the first join, never fail startup."""
        self.joined = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="user-cache-listener")
        try:
            await asyncio.wait_for(self.joined.wait(), timeout)
        except asyncio.TimeoutError:
            logger.warning("User cache listener not joined yet; L1 stays off until it is")

    async def stop(self) -> None:
        self.cache.disable()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._channel is not None:
            try:
                await asyncio.wait_for(get_channel_layer().group_discard(INVALIDATION_GROUP, self._channel), 1.0)
            except Exception:  # shutting down: the membership expires by itself
                pass

    async def _run(self) -> None:
        layer = get_channel_layer()
        self._channel = await layer.new_channel()
        delay = 0.1
        broken = False
        while True:
            try:
                await self._join(layer)
                if broken:
                    logger.warning("User cache listener re-joined after a Redis outage")
                broken, delay = False, 0.1
                await self._listen(layer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # It may have missed messages, and a restarted Redis has forgotten the group.
                self.joined.clear()
                self.cache.disable()
                if not broken:
                    logger.warning("User cache listener lost Redis, L1 off: %r", exc)
                broken = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _join(self, layer: Any) -> None:
        await layer.group_add(INVALIDATION_GROUP, self._channel)
        await sync_to_async(invalidate_users)(())  # resend what failed while Redis was away
        self.cache.clear()
        self.cache.enable()
        self.joined.set()

    async def _listen(self, layer: Any) -> None:
        rejoin = asyncio.create_task(self._rejoin_periodically(layer))
        try:
            while True:
                message = await layer.receive(self._channel)
                if message.get("origin") == worker_origin():
                    continue
                if message.get("all"):
                    self.cache.clear()
                else:
                    self.cache.invalidate(message.get("ids", ()))
        finally:
            rejoin.cancel()

    async def _rejoin_periodically(self, layer: Any) -> None:
        while True:
            await asyncio.sleep(REJOIN_INTERVAL)
            try:
                await layer.group_add(INVALIDATION_GROUP, self._channel)
            except Exception:  # the receive loop sees the same break and recovers
                pass


listener = InvalidationListener(local_cache)
