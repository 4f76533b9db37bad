"""After a change commits: drop the writer's L1 entry, bump the generation, delete L2, and tell
every worker. Sync, for on_commit callbacks, the admin and the shell."""
import asyncio
import threading
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from users.cache.connection import _once_more, _once_more_async, redis_health, worker_loop
from users.cache.keys import (
    GENERATION_TTL,
    INVALIDATION_GROUP,
    INVALIDATION_MESSAGE,
    user_cache_key,
    user_generation_key,
)
from users.cache.local import local_cache

# Ids whose L2 entry or group message could not be sent (Redis down); resent when it is back.
_pending: set[int] = set()
_pending_lock = threading.Lock()


def _take_pending(user_ids: Iterable[int]) -> list[int]:
    with _pending_lock:
        ids = sorted(_pending.union(user_ids))
        _pending.clear()
    return ids


def _keep_pending(user_ids: Iterable[int], exc: BaseException) -> None:
    with _pending_lock:
        _pending.update(user_ids)
    redis_health.failed(exc)


def _queue_invalidation(pipe: Any, user_ids: Iterable[int]) -> Any:
    """Bump each generation (failing in-flight stores), then drop the value; sync or async pipe."""
    for user_id in user_ids:
        pipe.incr(user_generation_key(user_id))
        pipe.expire(user_generation_key(user_id), GENERATION_TTL)
        pipe.delete(user_cache_key(user_id))
    return pipe


def invalidate_users(user_ids: Iterable[int]) -> None:
    """Forget users everywhere after their change committed. Sync: for on_commit, admin, shell."""
    user_ids = list(user_ids)
    local_cache.invalidate(user_ids)
    ids = _take_pending(user_ids)
    if not ids:
        return
    try:
        connection = get_redis_connection("default")
        _once_more(lambda: _queue_invalidation(connection.pipeline(transaction=True), ids).execute())
    except (RedisError, OSError) as exc:
        _keep_pending(ids, exc)
        return
    loop = worker_loop()
    if loop is not None and not _on_loop(loop):
        # In a worker, from a request's thread: the loop sends it; the request does not wait.
        asyncio.run_coroutine_threadsafe(_tell_workers(ids), loop)
        return
    try:
        async_to_sync(_tell_workers_once_more)(ids)
    except (RedisError, OSError) as exc:
        _keep_pending(ids, exc)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def _tell_workers_once_more(ids: list[int]) -> None:
    await _once_more_async(lambda: get_channel_layer().group_send(
        INVALIDATION_GROUP, {"type": INVALIDATION_MESSAGE, "ids": ids}
    ))
    redis_health.succeeded()


async def _tell_workers(ids: list[int]) -> None:
    try:
        await _tell_workers_once_more(ids)
    except (RedisError, OSError) as exc:
        _keep_pending(ids, exc)  # resent by the listener once it has joined again


def clear_all_users() -> int:
    """Drop every L2 entry and tell every worker to empty its L1 (operator command)."""
    connection = get_redis_connection("default")
    keys = connection.scan_iter(match=user_cache_key("*"), count=1000)
    ids = [int(key.rsplit(b":", 1)[1]) for key in keys if not key.endswith(b":gen")]
    results = _queue_invalidation(connection.pipeline(), ids).execute()
    removed = sum(results[2::3])  # each id queues incr, expire, delete
    local_cache.clear()
    async_to_sync(get_channel_layer().group_send)(INVALIDATION_GROUP, {"type": INVALIDATION_MESSAGE, "all": True})
    return removed
