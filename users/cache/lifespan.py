"""The ASGI lifespan of a worker: its invalidation listener, its broadcaster and its miss loader
live as long as it."""
import asyncio
import logging
from collections.abc import Callable

from users.cache.broadcast import broadcaster
from users.cache.listener import listener
from users.cache.loader import loader

logger = logging.getLogger("users.cache")

SHUTDOWN_TIMEOUT = 5.0


async def lifespan(scope: dict, receive: Callable, send: Callable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            broadcaster.start()
            await listener.start()
            await loader.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            stops = (("loader", loader.stop), ("broadcaster", broadcaster.stop), ("listener", listener.stop))
            for name, stop in stops:
                try:  # a worker must stop even if a dependency hangs
                    await asyncio.wait_for(stop(), SHUTDOWN_TIMEOUT)
                except Exception as exc:
                    logger.warning("The %s did not stop cleanly: %r", name, exc)
            await send({"type": "lifespan.shutdown.complete"})
            return
