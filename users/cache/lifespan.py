"""The ASGI lifespan of a worker: its invalidation listener and its miss loader live as long as it."""
import asyncio
from collections.abc import Callable

from users.cache.connection import set_worker_loop
from users.cache.listener import listener
from users.cache.loader import loader


async def lifespan(scope: dict, receive: Callable, send: Callable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            set_worker_loop(asyncio.get_running_loop())
            await listener.start()
            await loader.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await loader.stop()
            await listener.stop()
            set_worker_loop(None)
            await send({"type": "lifespan.shutdown.complete"})
            return
