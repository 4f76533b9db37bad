"""Refresh ahead: when another worker's write drops a profile this worker held in L1, it is read
again at once, from L2 or PostgreSQL, and kept in L1.

A profile in L1 is one that is being read. Without this, every reader of it on every worker
misses at the same moment after a write, and each goes to Redis and PostgreSQL on its own (a herd
on a popular profile, and the slowest part of a write reaching every worker); with it, each
worker reads it once, usually before the writer's client has its answer (the message goes out
first), and its readers go on hitting L1. The store uses an L1 token taken after the drop, so a
later write still wins, and a message naming more than MAX_IDS profiles (a bulk change) only
drops them.
"""
import asyncio
import logging

from users.cache import shared
from users.cache.answers import CachedResponse
from users.cache.loader import MissLoader
from users.cache.local import LocalCache

logger = logging.getLogger("users.cache")

MAX_IDS = 16


class Refresher:
    def __init__(self, cache: LocalCache, loader: MissLoader) -> None:
        self.cache = cache
        self.loader = loader
        self._tasks: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def refresh(self, dropped: dict[int, CachedResponse]) -> None:
        """Read the profiles of `dropped` again, each on the scheme of its dropped answer."""
        if not dropped or len(dropped) > MAX_IDS:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on a worker's loop: the next reader reads them
            return
        for user_id, answer in dropped.items():
            task = loop.create_task(self._refresh(user_id, answer.secure), name=f"user-cache-refresh-{user_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, set()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    async def _refresh(self, user_id: int, secure: bool) -> None:
        token = self.cache.token(user_id)
        try:
            answer, generation = await shared.read_answer(user_id)
            if answer is not None and answer.secure == secure:
                self.cache.set(user_id, answer, token)
                return
            answer = await self.loader.load(user_id, secure)
            if answer is None:  # deleted, or the loader cannot: the next reader asks Django
                return
            self.cache.set(user_id, answer, token)
            await shared.store_answer(user_id, answer, generation)
        except Exception as exc:  # a refresh is a bonus: a failure leaves a miss, as without it
            logger.debug("Refresh of user %s failed: %r", user_id, exc)
