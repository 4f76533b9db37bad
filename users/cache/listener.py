"""Each worker's invalidation listener, run by the ASGI lifespan: it applies other workers'
invalidations to L1, keeps L1 off whenever it may have missed one, and empties it when a
sender's sequence shows a gap. Its own worker's messages prove L1 fresh (users/cache/broadcast.py)."""
import asyncio
import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from users.cache.broadcast import broadcaster, worker_origin
from users.cache.invalidation import _pending, invalidate_users
from users.cache.keys import INVALIDATION_GROUP
from users.cache.local import LocalCache, local_cache
from users.cache.refresh import refresher

logger = logging.getLogger("users.cache")

REJOIN_INTERVAL = 3600.0  # well inside the channel layer's group_expiry (86400 s)
STARTUP_JOIN_TIMEOUT = 2.0
STOP_TIMEOUT = 1.0


class InvalidationListener:
    """Joins the group, applies invalidations to L1, and empties L1 whenever Redis breaks.

    While not joined, L1 stays off: a worker that may miss messages must not serve from memory.
    """

    def __init__(self, cache: LocalCache) -> None:
        self.cache = cache
        self.joined = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._channel: str | None = None
        self._senders: dict[str, tuple[int, float | None]] = {}  # origin -> (last seq, heard at)
        self._joined_at = 0.0
        self._stopping = False

    async def start(self, timeout: float = STARTUP_JOIN_TIMEOUT) -> None:
        """Start listening; wait a bounded time for the first join, never fail startup."""
        self.joined = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="user-cache-listener")
        try:
            await asyncio.wait_for(self.joined.wait(), timeout)
        except asyncio.TimeoutError:
            logger.warning("User cache listener not joined yet; L1 stays off until it is")

    async def stop(self) -> None:
        self.cache.disable()
        if self._task is not None:
            self._stopping = True  # also ends the loops should channels-redis swallow the cancel
            self._task.cancel()
            # channels-redis can hold a cancelled receive until its blocking pop returns (seen
            # after a Redis restart): a worker must stop all the same.
            done, _ = await asyncio.wait({self._task}, timeout=STOP_TIMEOUT)
            if not done:
                logger.warning("User cache listener still receiving after %.0f s, left behind", STOP_TIMEOUT)
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
        while not self._stopping:
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
        self._joined_at = time.monotonic()
        self.joined.set()
        broadcaster.heartbeat_now()  # L1 answers once this comes back

    async def _listen(self, layer: Any) -> None:
        rejoin = asyncio.create_task(self._rejoin_periodically(layer))
        try:
            while not self._stopping:
                self.apply(await layer.receive(self._channel))
                if _pending:  # Redis answers again: what this worker could not send goes out now
                    await sync_to_async(invalidate_users)(())
        finally:
            rejoin.cancel()

    def apply(self, message: dict[str, Any]) -> None:
        """One group message: another worker's invalidation, or this worker's own (a proof)."""
        origin, seq = message.get("origin"), message.get("seq")
        if origin == worker_origin():
            if isinstance(sent_at := message.get("sent_at"), float):
                self.cache.prove_fresh(sent_at)
                self._forget_silent_senders()
            return
        if message.get("all"):
            self.cache.clear()
        else:
            refresher.refresh(self.cache.invalidate(message.get("ids", ())))
        if isinstance(origin, str) and isinstance(seq, int):
            self._check_sequence(origin, seq, bool(message.get("heartbeats")))

    def _check_sequence(self, origin: str, seq: int, heartbeats: bool) -> None:
        last = self._senders.get(origin, (None, None))[0]
        if last is None:
            # The sender's earlier messages were all sent before this worker joined (and emptied
            # L1) only if it is a worker heard from just after the join: it sends every quarter
            # of the bound. Otherwise some may have been sent to this worker and lost.
            just_joined = heartbeats and time.monotonic() - self._joined_at < self.cache.max_staleness
            gap = seq != 1 and not just_joined
        else:
            gap = seq > last + 1
        if gap:
            # A message of this sender never came (a full channel, an expired message, a break):
            # it may have named any user.
            self.cache.clear()
            if last is not None:
                logger.warning("User cache listener missed %d message(s), L1 emptied", seq - last - 1)
        self._senders[origin] = (max(seq, last or 0), time.monotonic() if heartbeats else None)

    def _forget_silent_senders(self) -> None:
        """A worker silent for twice the bound stopped (or is cut off); its last message, if it
        was lost, would never show a gap: empty L1 once and forget it. (The shell and Celery send
        no heartbeat: a gap in theirs shows with their next message.)"""
        cutoff = time.monotonic() - 2 * self.cache.max_staleness
        silent = [origin for origin, (_, heard) in self._senders.items() if heard is not None and heard < cutoff]
        if silent:
            self.cache.clear()
            for origin in silent:
                del self._senders[origin]

    async def _rejoin_periodically(self, layer: Any) -> None:
        while True:
            await asyncio.sleep(REJOIN_INTERVAL)
            try:
                await layer.group_add(INVALIDATION_GROUP, self._channel)
            except Exception:  # the receive loop sees the same break and recovers
                pass


listener = InvalidationListener(local_cache)
