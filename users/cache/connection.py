"""Redis clients of the request path and their health: one warning per outage, and a short
back-off instead of a timeout on every request while Redis is away."""
import asyncio
import logging
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("users.cache")


class _RedisHealth:
    RETRY_AFTER = 1.0

    def __init__(self) -> None:
        self._down_until = 0.0
        self._down = False

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.RETRY_AFTER
        if not self._down:
            self._down = True
            logger.warning("Redis unavailable, serving users from PostgreSQL: %r", exc)

    def succeeded(self) -> None:
        self._down_until = 0.0
        if self._down:
            self._down = False
            logger.warning("Redis is back, user cache resumed")


redis_health = _RedisHealth()

# A hung Redis fails a request's cache call after this long (s); the request goes on without it.
REDIS_TIMEOUT = 0.5

# redis.asyncio clients are bound to the loop that made them: one per event loop.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]" = weakref.WeakKeyDictionary()


def redis_client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        # No socket_timeout (redis-py's default is 5 s): it runs every command in a task of its own
        # to time it (asyncio.wait_for), a tenth of an L2 hit's cost. `redis_call` times the call.
        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=None, socket_connect_timeout=REDIS_TIMEOUT)
        _clients[loop] = client
    return client


async def redis_call(call: Callable[[], Awaitable[Any]]) -> Any:
    """One call of the request path's Redis client: retried once on a fresh connection after a
    restart, and a RedisError (TimeoutError) past REDIS_TIMEOUT when Redis hangs. A call cut
    short drops its connection (redis-py disconnects on cancellation), so no late reply is misread."""
    try:
        async with asyncio.timeout(REDIS_TIMEOUT):
            return await _once_more_async(call)
    except TimeoutError as exc:
        raise RedisTimeoutError(f"no answer from Redis in {REDIS_TIMEOUT} s") from exc


def run_sync(function: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run the one (async) implementation of a cache call from sync code (DRF's authentication,
    on_commit callbacks, the admin, the shell, Celery), and return its result.

    In a worker it runs on the worker's own event loop, whose Redis clients are warm, while this
    thread waits (one hop back, as `async_to_sync` makes); elsewhere on an event loop this process
    keeps for the purpose in a thread of its own.
    """
    from users.cache.broadcast import broadcaster

    loop = broadcaster.loop or _own_loop.get()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        raise RuntimeError("run_sync() would wait for its own event loop: await the function instead")
    return asyncio.run_coroutine_threadsafe(function(*args), loop).result()


class _OwnLoop:
    """An event loop in a daemon thread, for the sync callers of a process without a worker loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # also after a fork
                self._loop, self._pid = asyncio.new_event_loop(), os.getpid()
                threading.Thread(target=self._loop.run_forever, name="user-cache-sync-calls", daemon=True).start()
            return self._loop


_own_loop = _OwnLoop()


async def ping() -> None:
    await redis_call(redis_client().ping)


async def ping_channel_layer() -> None:
    await get_channel_layer().connection(0).ping()


async def _once_more_async(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except RedisConnectionError:
        return await call()
