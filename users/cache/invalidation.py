"""After a change commits: drop the writer's L1 entry, bump the generation, delete L2, and tell
every worker. Sync, for on_commit callbacks, the admin and the shell.

In a worker the group message is sent by its loop (`broadcaster`), so the writer's thread does
not wait for it, and what several writers change at once goes out as one message: one send in
flight per worker, so a write burst cannot flood the listeners' channels. Elsewhere (shell,
Celery, management commands) it is sent before `invalidate_users` returns.
"""
import asyncio
import os
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from users.cache.connection import _once_more, _once_more_async, redis_health
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


_origin: tuple[int, str] | None = None


def worker_origin() -> str:
    """This process's name in its messages: unique per process, also after a fork."""
    global _origin
    if _origin is None or _origin[0] != os.getpid():
        _origin = (os.getpid(), uuid.uuid4().hex)
    return _origin[1]


def _message(ids: list[int]) -> dict[str, Any]:
    # The writer's process emptied its own L1 at commit; its listener skips the echo, which would
    # only drop entries stored since from the new row.
    return {"type": INVALIDATION_MESSAGE, "ids": ids, "origin": worker_origin()}


class Broadcaster:
    """Sends the group messages of one worker from its event loop, coalesced.

    `send` is thread-safe and never waits. The ids queued while a send is in flight go out
    together in the next one; what cannot be sent joins the pending ids, resent by the next
    invalidation or when the listener re-joins.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids: set[int] = set()
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

    def send(self, user_ids: list[int]) -> bool:
        """Queue a message; False where no worker loop runs (the caller then sends it itself)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return False
        loop.call_soon_threadsafe(self._queue, user_ids)
        return True

    def _queue(self, user_ids: list[int]) -> None:
        self._ids.update(user_ids)
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._send()

    async def _send(self) -> None:
        ids, self._ids = sorted(self._ids), set()
        try:
            await _once_more_async(lambda: get_channel_layer().group_send(INVALIDATION_GROUP, _message(ids)))
        except asyncio.CancelledError:
            self._ids.update(ids)  # stop() sends them
            raise
        except Exception as exc:  # RedisError, OSError, a timeout: nothing may kill the sender
            _keep_pending(ids, exc)
        else:
            redis_health.succeeded()


broadcaster = Broadcaster()


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
        if not broadcaster.send(ids):
            _once_more(lambda: async_to_sync(get_channel_layer().group_send)(INVALIDATION_GROUP, _message(ids)))
    except (RedisError, OSError) as exc:
        _keep_pending(ids, exc)
    else:
        redis_health.succeeded()


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
