"""Redis clients of the request path and their health: one warning per outage, and a short
back-off instead of a timeout on every request while Redis is away."""
import asyncio
import logging
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


async def ping() -> None:
    await redis_call(redis_client().ping)


async def ping_channel_layer() -> None:
    await get_channel_layer().connection(0).ping()


def _once_more(call: Callable[[], Any]) -> Any:
    """After a Redis restart each pooled connection fails once: retry once on a fresh one."""
    try:
        return call()
    except RedisConnectionError:
        return call()


async def _once_more_async(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except RedisConnectionError:
        return await call()
