"""A worker's runtime, built and started by its ASGI lifespan and stopped with it; the one every
other process holds is built the same way (`new_runtime`) and never started (`UsersConfig.ready()`)."""
import asyncio
import logging
from collections.abc import Callable

from sidus.edge.answers import TemplateStore
from users.accounts.ended import EndedSessions
from users.auth.keys import SigningKeys
from users.auth.signing import VerifiedTokens
from users.cache import reads, shared
from users.cache.batches import TurnBatcher
from users.cache.broadcast import Broadcaster
from users.cache.connection import RedisConnection
from users.cache.invalidation import Backlog
from users.cache.listener import InvalidationListener
from users.cache.loader import MissLoader
from users.cache.local import LocalCache
from users.cache.refresh import Refresher
from users.cache.unsent import UnsentLedger
from users.edge.wellknown import KeptDocuments
from users.loop_db import LoopDatabase
from users.runtime import Runtime, install

logger = logging.getLogger("users.cache")

SHUTDOWN_TIMEOUT = 5.0


def new_runtime() -> Runtime:
    """A runtime with every part built and none started: what Celery, the shell, management
    commands and tests hold, and what a worker's lifespan starts."""
    db, redis, local_cache, templates = LoopDatabase(), RedisConnection(), LocalCache.from_settings(), TemplateStore()
    backlog, unsent, loader = Backlog(), UnsentLedger(db), MissLoader(db, templates)
    refresher = Refresher(local_cache, loader)
    listener = InvalidationListener(local_cache, master_check=redis.master_check, backlog=backlog, unsent=unsent,
                                    refresher=refresher)
    return Runtime(
        db=db, ended_sessions=EndedSessions(db), signing_keys=SigningKeys(db), verified_tokens=VerifiedTokens(),
        local_cache=local_cache, redis=redis,
        reads=TurnBatcher(reads.read_many, unique=True), stores=TurnBatcher(shared.store_many),
        backlog=backlog, unsent=unsent, broadcaster=Broadcaster(), listener=listener, refresher=refresher,
        loader=loader, templates=templates, documents=KeptDocuments(),
    )


async def lifespan(scope: dict, receive: Callable, send: Callable) -> None:
    """The ASGI lifespan: a new runtime for the worker at startup, stopped at shutdown."""
    runtime = new_runtime()
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            install(runtime)
            await runtime.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for name, stop in runtime.stops():
                try:  # a worker must stop even if a dependency hangs
                    await asyncio.wait_for(stop(), SHUTDOWN_TIMEOUT)
                except Exception as exc:
                    logger.warning("The %s did not stop cleanly: %r", name, exc)
            install(new_runtime())
            await send({"type": "lifespan.shutdown.complete"})
            return
