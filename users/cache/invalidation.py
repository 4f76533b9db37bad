"""After a change commits: bump the generation, delete L2, drop the writer's L1 entry, and tell
every worker. One implementation, `invalidate_users_async`, on an event loop; `invalidate_users`
runs it from sync code (on_commit callbacks, the admin, the shell).

In a worker the group message goes out through its loop's `broadcaster`, coalesced with other
writers'; elsewhere (shell, Celery, management commands) it is sent directly. Either way it is out
before the call returns, unless Redis fails or hangs: then the ids are kept and resent, and
written to PostgreSQL for the other workers to send (`unsent`).
"""
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from asgiref.sync import async_to_sync
from django_redis import get_redis_connection

from users.cache import shared
from users.cache.answers import CachedResponse
from users.cache.broadcast import send_to_group
from users.cache.connection import REDIS_TIMEOUT, redis_call, redis_client
from users.cache.keys import GENERATION_TTL, INVALIDATION_MESSAGE, user_cache_key, user_generation_key
from users.cache.sync import run_sync
from users.runtime import current

logger = logging.getLogger("users.cache")

# A hung channel layer holds a write's answer this long at most; then its ids go to the ledger
# (`unsent`), which the others read within a probe: the bound holds from here.
BROADCAST_TIMEOUT = REDIS_TIMEOUT


class Backlog:
    """The ids whose L2 entry or group message this process could not send (Redis down): sent
    with the next invalidation, or by the listener when Redis is back."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._ids)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._ids

    def take(self, user_ids: Iterable[int]) -> list[int]:
        """`user_ids` and every id kept, sorted; none are kept after."""
        with self._lock:
            ids = sorted(self._ids.union(user_ids))
            self._ids.clear()
        return ids

    def keep(self, user_ids: Iterable[int]) -> None:
        with self._lock:
            self._ids.update(user_ids)


def _queue_invalidation(
    pipe: Any, user_ids: Iterable[int], fresh: Mapping[int, tuple[CachedResponse | None, Any]] | None = None
) -> Any:
    """Bump each generation (failing in-flight stores), then drop the value; sync or async pipe.
    `fresh` (see `invalidate_users_async`) is kept after the bump, if the writer's read was the last."""
    for user_id in user_ids:
        pipe.incr(user_generation_key(user_id))
        pipe.expire(user_generation_key(user_id), GENERATION_TTL)
        pipe.delete(user_cache_key(user_id))
    for user_id, (answer, generation) in (fresh or {}).items():
        if answer is not None and generation is not shared.UNREACHABLE:
            pipe.eval(*shared.store_command(user_id, answer, int(generation or 0) + 1))
    return pipe


def invalidate_users(user_ids: Iterable[int]) -> None:
    """Forget users everywhere after their change committed, from sync code (on_commit callbacks,
    the admin, the shell, Celery): `invalidate_users_async`, run on the worker's loop or this
    process's own (`run_sync`)."""
    run_sync(invalidate_users_async, list(user_ids))


async def invalidate_users_async(
    user_ids: Iterable[int], *, fresh: Mapping[int, tuple[CachedResponse | None, Any]] | None = None
) -> None:
    """`invalidate_users` on the event loop: the same steps in the same order, with no thread.

    `fresh`: a writer's own public answer of a user (None: nothing to keep), with the generation
    it read before its write (`shared.read_generation`). It is kept in L2 in the same transaction,
    after the bump, only if that bump was the one next after the writer's read: a write that
    committed after this one bumped in between, or bumps later and deletes it. The other workers,
    told next, then read the profile from L2 instead of PostgreSQL.
    """
    user_ids = list(user_ids)
    runtime = current()
    ids = runtime.backlog.take(user_ids)
    if not ids:
        return
    try:
        await _send(ids, fresh, forget=user_ids)
    except Exception as exc:  # RedisError, OSError, a hung Redis (TimeoutError)
        runtime.backlog.keep(ids)
        runtime.redis.health.failed(exc)
        try:
            await runtime.unsent.record(ids)  # every worker's probe sends them, this one's included
        except Exception as ledger_exc:  # PostgreSQL too: this worker resends them when Redis is back
            logger.warning("Invalidation of %d user(s) kept in this worker only: %r", len(ids), ledger_exc)
    else:
        runtime.redis.health.succeeded()


async def resend(user_ids: list[int]) -> None:
    """The invalidation of users whose writers could not send it (`unsent`); raises if Redis fails."""
    await _send(user_ids, forget=user_ids)


async def _send(ids: list[int], fresh: Mapping[int, tuple[CachedResponse | None, Any]] | None = None, *,
                forget: list[int]) -> None:
    """Redis's steps in their order, raising what failed: L2 first, then this worker's L1 (`forget`,
    whatever happened: a reader here must not keep what L2 still held), then the group message."""
    runtime = current()
    try:
        client = redis_client()
        await redis_call(lambda: _queue_invalidation(client.pipeline(transaction=True), ids, fresh).execute())
    finally:
        runtime.local_cache.invalidate(forget)
    await runtime.broadcaster.send_async(ids, BROADCAST_TIMEOUT)


def clear_all_users() -> int:
    """Drop every L2 entry and tell every worker to empty its L1 (operator command)."""
    connection = get_redis_connection("default")
    keys = connection.scan_iter(match=user_cache_key("*"), count=1000)
    ids = [int(key.rsplit(b":", 1)[1]) for key in keys if not key.endswith(b":gen")]
    results = _queue_invalidation(connection.pipeline(), ids).execute()
    removed = sum(results[2::3])  # each id queues incr, expire, delete
    current().local_cache.clear()
    async_to_sync(send_to_group)({"type": INVALIDATION_MESSAGE, "all": True})
    return removed
