"""Each worker's invalidation listener, run by the ASGI lifespan: it applies other workers'
invalidations to L1, keeps L1 off whenever it may have missed one, and empties it when the
numbers of the messages show a hole. Its probes, sent to its own channel, prove L1 fresh
(users/cache/receipts.py)."""
import asyncio
import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from users.cache.broadcast import SEND_TIMEOUT, read_count, worker_origin
from users.cache.connection import MasterCheck
from users.cache.invalidation import Backlog, invalidate_users, resend
from users.cache.keys import INVALIDATION_GROUP, INVALIDATION_MESSAGE
from users.cache.local import LocalCache
from users.cache.receipts import Receipts
from users.cache.refresh import Refresher
from users.cache.unsent import UnsentLedger

logger = logging.getLogger("users.cache")

REJOIN_INTERVAL = 3600.0  # well inside the channel layer's group_expiry (86400 s)
STARTUP_JOIN_TIMEOUT = 2.0
STOP_TIMEOUT = 1.0
MASTER_CHECK_TIMEOUT = 5.0  # emptying a large L2 after a failover takes a while


class InvalidationListener:
    """Joins the group, applies invalidations to L1, and empties L1 whenever Redis breaks.

    While not joined, L1 stays off: a worker that may miss messages must not serve from memory.
    """

    def __init__(self, cache: LocalCache, *, master_check: MasterCheck, backlog: Backlog, unsent: UnsentLedger,
                 refresher: Refresher) -> None:
        self.cache = cache
        self.master_check = master_check
        self.backlog = backlog
        self.unsent = unsent
        self.refresher = refresher
        self.joined = asyncio.Event()
        self.proven = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._channel: str | None = None
        self.receipts = Receipts(lost_after=SEND_TIMEOUT)
        self._probe_now = asyncio.Event()
        self._stopping = False

    async def start(self, timeout: float = STARTUP_JOIN_TIMEOUT) -> None:
        """Start listening; wait a bounded time for the first join and the first proof (so that a
        worker answers with its L1 on from its first request), never fail startup."""
        self.joined = asyncio.Event()
        self.proven = asyncio.Event()
        self._probe_now = asyncio.Event()
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="user-cache-listener")
        try:
            async with asyncio.timeout(timeout):
                await self.joined.wait()
                await self.proven.wait()
        except TimeoutError:
            logger.warning("User cache listener not %s yet; L1 stays off until it is",
                           "proven fresh" if self.joined.is_set() else "joined")

    async def stop(self) -> None:
        self.cache.disable()
        self.master_check.watching = False
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
        self.master_check.watching = True
        self.master_check.distrust()  # L2 is read again once the probe has checked the master
        count = await read_count()
        await layer.group_add(INVALIDATION_GROUP, self._channel)
        await sync_to_async(invalidate_users)(())  # resend what failed while Redis was away
        self.cache.clear()
        self.cache.enable()
        self.receipts.start(count)
        self.joined.set()
        self._probe_now.set()  # L1 answers once this probe comes back

    async def _listen(self, layer: Any) -> None:
        helpers = [asyncio.create_task(self._rejoin_periodically(layer)), asyncio.create_task(self._probe(layer))]
        try:
            while not self._stopping:
                self.apply(await layer.receive(self._channel))
                if self.backlog:  # Redis answers again: what this worker could not send goes out now
                    await sync_to_async(invalidate_users)(())
        finally:
            for helper in helpers:
                helper.cancel()

    async def _probe(self, layer: Any) -> None:
        """Every quarter of the bound: send what the ledger of unsent invalidations holds, check the
        Redis master, read the count, then send a probe to this worker's own channel."""
        interval = self.cache.max_staleness / 4
        while True:
            try:
                async with asyncio.timeout(interval):
                    await self._probe_now.wait()
            except TimeoutError:
                pass
            self._probe_now.clear()
            if self.unsent.db.running:  # a worker's loop: first, what writers cut off from Redis could not send
                try:
                    async with asyncio.timeout(interval):
                        await self.unsent.catch_up(resend, self.cache.invalidate)
                except Exception:  # PostgreSQL or Redis away: the users last read stay gated
                    pass
            try:
                async with asyncio.timeout(MASTER_CHECK_TIMEOUT):
                    if await self.master_check.check():
                        self.cache.clear()
            except Exception:  # L2 stays unread until a check succeeds
                self.master_check.distrust()
            probed_at, highest = time.monotonic(), self.receipts.highest
            try:
                async with asyncio.timeout(interval):
                    count = await read_count()
                    await layer.send(self._channel, {
                        "type": INVALIDATION_MESSAGE, "probe": probed_at, "count": count, "highest": highest,
                        "origin": worker_origin(),
                    })
            except Exception:  # a hung or lost Redis: no proof, so L1 lapses; the receive loop recovers
                pass

    def apply(self, message: dict[str, Any]) -> None:
        """One message: an invalidation (another worker's, or this worker's own), or a probe back."""
        own = message.get("origin") == worker_origin()
        if own and isinstance(probed_at := message.get("probe"), float) and isinstance(message.get("count"), int):
            lost = self.receipts.probe_returned(probed_at, message["count"], message.get("highest", 0))
            if lost:
                self.cache.clear()
                logger.warning("User cache listener missed %s, L1 emptied",
                               f"{lost} message(s)" if lost > 0 else "the count (Redis lost its data)")
        else:
            if message.get("all"):
                self.cache.clear()
            elif not own:  # the writer's process emptied its own entries already
                self.refresher.refresh(self.cache.invalidate(message.get("ids", ())))
            if isinstance(number := message.get("number"), int):
                self.receipts.received(number)
        if (proven := self.receipts.proven()) is not None:
            self.cache.prove_fresh(proven)
            self.proven.set()

    async def _rejoin_periodically(self, layer: Any) -> None:
        while True:
            await asyncio.sleep(REJOIN_INTERVAL)
            try:
                await layer.group_add(INVALIDATION_GROUP, self._channel)
            except Exception:  # the receive loop sees the same break and recovers
                pass
