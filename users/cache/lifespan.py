"""The ASGI lifespan of a worker: its invalidation listener, its broadcaster, its miss loader, its
refresher, its copy of the ended sessions and its event-loop database pool live as long as it."""
import asyncio
import logging
from collections.abc import Callable

from users.cache.broadcast import broadcaster
from users.cache.listener import listener
from users.cache.loader import loader
from users.cache.refresh import refresher
from users.loop_db import loop_db
from users.sessions import ended_sessions

logger = logging.getLogger("users.cache")

SHUTDOWN_TIMEOUT = 5.0


async def lifespan(scope: dict, receive: Callable, send: Callable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await loop_db.start()  # first: the listener's probes read the unsent invalidations with it
            broadcaster.start()
            await listener.start()
            ended_sessions.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            stops = (
                ("refresher", refresher.stop), ("loader", loader.stop), ("ended sessions", ended_sessions.stop),
                ("database pool", loop_db.stop),
                ("broadcaster", broadcaster.stop), ("listener", listener.stop),
            )
            for name, stop in stops:
                try:  # a worker must stop even if a dependency hangs
                    await asyncio.wait_for(stop(), SHUTDOWN_TIMEOUT)
                except Exception as exc:
                    logger.warning("The %s did not stop cleanly: %r", name, exc)
            await send({"type": "lifespan.shutdown.complete"})
            return
