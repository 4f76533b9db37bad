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
from django.conf import settings
from django_redis import get_redis_connection

from users.cache import shared
from users.cache.answers import CachedResponse, encode
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


# Each user's generation bumped (failing in-flight stores) and its answer dropped, in one command.
# KEYS: each user's generation key, then its answer key. ARGV: the generations' TTL, the answers'
# TTL, then for each user the generation its writer read before the write ('' if none) and the
# writer's fresh answer: kept instead of dropped if the bump was the one next after that read.
_INVALIDATE = """
local dropped = 0
for i = 1, #KEYS / 2 do
  local generation = redis.call('INCR', KEYS[2 * i - 1])
  redis.call('EXPIRE', KEYS[2 * i - 1], ARGV[1])
  local read = ARGV[2 * i + 1]
  if read ~= '' and generation == tonumber(read) + 1 then
    redis.call('SET', KEYS[2 * i], ARGV[2 * i + 2], 'EX', ARGV[2])
  else
    dropped = dropped + redis.call('DEL', KEYS[2 * i])
  end
end
return dropped
"""


def _invalidation(
    user_ids: Iterable[int], fresh: Mapping[int, tuple[CachedResponse | None, Any]] | None = None
) -> tuple[Any, ...]:
    """The arguments of EVAL that invalidates `user_ids` (see `invalidate_users_async` for `fresh`)."""
    keys: list[str] = []
    args: list[Any] = [GENERATION_TTL, settings.USER_CACHE_L2_TTL]
    for user_id in user_ids:
        keys += (user_generation_key(user_id), user_cache_key(user_id))
        answer, generation = (fresh or {}).get(user_id, (None, None))
        if answer is None or generation is shared.UNREACHABLE:
            args += ("", "")
        else:
            args += (int(generation or 0), encode(answer))
    return (_INVALIDATE, len(keys), *keys, *args)


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
        await redis_call(lambda: client.eval(*_invalidation(ids, fresh)))
    finally:
        runtime.local_cache.invalidate(forget)
    await runtime.broadcaster.send_async(ids, BROADCAST_TIMEOUT)


def clear_all_users() -> int:
    """Drop every L2 entry and tell every worker to empty its L1 (operator command)."""
    connection = get_redis_connection("default")
    keys = connection.scan_iter(match=user_cache_key("*"), count=1000)
    ids = [int(key.rsplit(b":", 1)[1]) for key in keys if not key.endswith(b":gen")]
    removed = sum(connection.eval(*_invalidation(ids[n:n + 1000])) for n in range(0, len(ids), 1000))
    current().local_cache.clear()
    async_to_sync(send_to_group)({"type": INVALIDATION_MESSAGE, "all": True})
    return removed
