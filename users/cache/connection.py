"""Redis clients of the request path and their health: one warning per outage, and a short
back-off instead of a timeout on every request while Redis is away. Each process's are its
runtime's (`RedisConnection`); the functions below reach them through `users.runtime.current()`."""
import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import redis.asyncio.sentinel  # noqa: F401  (aioredis.sentinel)
from channels.layers import get_channel_layer
from django.conf import settings
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from users.cache.keys import user_cache_key
from users.runtime import current

logger = logging.getLogger("users.cache")


class RedisHealth:
    RETRY_AFTER = 1.0

    def __init__(self, master_check: "MasterCheck") -> None:
        self.master_check = master_check
        self._down_until = 0.0
        self._down = False

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        self.master_check.distrust()
        self._down_until = time.monotonic() + self.RETRY_AFTER
        if not self._down:
            self._down = True
            logger.warning("Redis unavailable, serving users from PostgreSQL: %r", exc)

    def succeeded(self) -> None:
        self._down_until = 0.0
        if self._down:
            self._down = False
            logger.warning("Redis is back, user cache resumed")


# A hung Redis fails a request's cache call after this long (s); the request goes on without it.
REDIS_TIMEOUT = 0.5


class RedisConnection:
    """A process's clients of the request path's Redis, with their health and the master check."""

    def __init__(self) -> None:
        self.master_check = MasterCheck()
        self.health = RedisHealth(self.master_check)
        # redis.asyncio clients are bound to the loop that made them: one per event loop.
        self._clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]" = (
            weakref.WeakKeyDictionary())

    def client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = _new_client()
        return client


def redis_client() -> aioredis.Redis:
    """This process's client on the running loop."""
    return current().redis.client()


def _new_client() -> aioredis.Redis:
    # No socket_timeout (redis-py's default is 5 s): it runs every command in a task of its own
    # to time it (asyncio.wait_for), a cost on every L2 hit. `redis_call` times the call instead.
    options = {"socket_timeout": None, "socket_connect_timeout": REDIS_TIMEOUT}
    if settings.REDIS_SENTINELS:  # the master of the moment, asked of the sentinels on each new connection
        url = parse_url(settings.REDIS_URL)  # its DB number and credentials; the sentinels give the host
        sentinel = aioredis.sentinel.Sentinel(
            settings.REDIS_SENTINELS, sentinel_kwargs={"socket_connect_timeout": REDIS_TIMEOUT,
                                                       "socket_timeout": REDIS_TIMEOUT})
        client = sentinel.master_for(settings.REDIS_SENTINEL_MASTER, db=url.get("db", 0),
                                     username=url.get("username"), password=url.get("password"), **options)
    else:
        client = aioredis.Redis.from_url(settings.REDIS_URL, **options)
    return client


class MasterCheck:
    """Whether L2 may be read: the server answering is a master whose L2 was checked since the last
    Redis error of this process.

    A failover (or a restart) can lose the writes the old master had not passed on: a bumped
    generation, a deleted L2 entry. So after any error the worker reads no L2 until its listener
    has seen, on the server that answers, that it is a master and that L2 was emptied under this
    master's replication id (`check`, with every probe). The first worker to meet a new master
    empties L2 and writes the marker; the others wait for it. Processes without a listener (the
    shell, Celery, tests) only write to L2 and are not held back.
    """

    MARKER = "sidus:users:l2-master"
    LOCK = "sidus:users:l2-reset"

    def __init__(self) -> None:
        self.watching = False
        self._checked = True

    @property
    def trusted(self) -> bool:
        return self._checked or not self.watching

    def distrust(self) -> None:
        self._checked = False

    async def check(self) -> bool:
        """Returns True when this check emptied L2 (a new master): the caller empties L1 too."""
        client = redis_client()
        replication = await redis_call(lambda: client.info("replication"))
        if replication.get("role") != "master":  # a demoted master still answers reads: leave it
            self._checked = False
            await client.connection_pool.disconnect()
            return False
        replid = replication["master_replid"]
        if await redis_call(lambda: client.get(self.MARKER)) == replid.encode():
            self._checked = True
            return False
        self._checked = False
        if not await redis_call(lambda: client.set(self.LOCK, replid, nx=True, px=10_000)):
            return False  # another worker is emptying it
        if await redis_call(lambda: client.get(self.MARKER)) == replid.encode():  # it finished since our read
            await redis_call(lambda: client.delete(self.LOCK))
            self._checked = True
            return False
        deleted, batch = 0, []
        async for key in client.scan_iter(match=f"{user_cache_key('')}*", count=1000):  # answers and generations
            batch.append(key)
            if len(batch) == 1000:
                deleted += await client.delete(*batch)
                batch.clear()
        if batch:
            deleted += await client.delete(*batch)
        await redis_call(lambda: client.set(self.MARKER, replid))
        await redis_call(lambda: client.delete(self.LOCK))
        if deleted:  # a failover: what the old master held may be older than PostgreSQL
            logger.warning("A new Redis master (%s): L2 emptied (%d keys), L1 too", replid[:12], deleted)
        else:  # a first start, or a Redis that kept nothing: nothing was lost
            logger.info("A new Redis master (%s): L2 held no profiles, L1 emptied", replid[:12])
        self._checked = True
        return True


async def redis_call(call: Callable[[], Awaitable[Any]]) -> Any:
    """One call of the request path's Redis client: retried once on a fresh connection after a
    restart, and a RedisError (TimeoutError) past REDIS_TIMEOUT when Redis hangs. A call cut
    short drops its connection (redis-py disconnects on cancellation), so no late reply is misread."""
    try:
        async with asyncio.timeout(REDIS_TIMEOUT):
            return await retry_once(call)
    except TimeoutError as exc:
        raise RedisTimeoutError(f"no answer from Redis in {REDIS_TIMEOUT} s") from exc


async def ping() -> None:
    await redis_call(redis_client().ping)


async def ping_channel_layer() -> None:
    await get_channel_layer().connection(0).ping()


async def retry_once(call: Callable[[], Awaitable[Any]]) -> Any:
    """`call`, and once more on a fresh connection if the first failed to connect (a restart)."""
    try:
        return await call()
    except RedisConnectionError:
        current().redis.master_check.distrust()  # the retry may reach another server: a new master, after a failover
        return await call()
