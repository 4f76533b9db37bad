"""The ASGI lifespan of a worker: its invalidation listener and its miss loader live as long as it."""
from collections.abc import Callable

from users.cache.listener import listener
from users.cache.loader import loader


async def lifespan(scope: dict, receive: Callable, send: Callable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await listener.start()
            await loader.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await loader.stop()
            await listener.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
