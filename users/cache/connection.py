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

# redis.asyncio clients are bound to the loop that made them: one per event loop.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]" = weakref.WeakKeyDictionary()


def redis_client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
        _clients[loop] = client
    return client


async def ping() -> None:
    await redis_client().ping()


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
