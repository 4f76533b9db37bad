"""Every Redis and Channels call of sidus lives here."""
import asyncio
import weakref

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings

# redis.asyncio clients are bound to the loop that made them: keep one per event loop.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]" = weakref.WeakKeyDictionary()


def redis_client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=30
        )
        _clients[loop] = client
    return client


async def ping() -> None:
    await redis_client().ping()


async def ping_channel_layer() -> None:
    await get_channel_layer().connection(0).ping()
