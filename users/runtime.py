"""What a process of sidus holds while it runs: one `Runtime`, the only per-process state.

An ASGI worker's runtime is built and started by its lifespan (`users.lifespan`), and stopped with
it; every other process (Celery, the shell, management commands, tests) holds one that is built at
`UsersConfig.ready()` and never started: it writes through to Redis and PostgreSQL, and answers
nothing from memory. Code reaches its process's runtime with `current()`; a test installs a fresh
one (`install`).
"""
from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sidus.edge.answers import TemplateStore
    from users.accounts.ended import EndedSessions
    from users.auth.keys import SigningKeys
    from users.auth.signing import VerifiedTokens
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


@dataclass(eq=False)
class Runtime:
    """The parts a process shares between its requests and tasks, each built once for it
    (`users.lifespan.new_runtime`)."""

    db: LoopDatabase  # PostgreSQL on the event loop (a worker's, once started)
    ended_sessions: EndedSessions  # which sessions ended lately, read every quarter of the bound
    signing_keys: SigningKeys  # the tokens' keys, read every quarter of the bound
    verified_tokens: VerifiedTokens  # the tokens whose signature was checked lately
    local_cache: LocalCache  # L1
    redis: RedisConnection  # the request path's Redis clients and their health
    reads: TurnBatcher  # L2 reads of one turn of the loop, in one MGET
    stores: TurnBatcher  # L2 stores of one turn of the loop, in one pipeline
    backlog: Backlog  # invalidations not sent yet, resent when Redis is back
    unsent: UnsentLedger  # invalidations a writer could not send, kept in PostgreSQL
    broadcaster: Broadcaster  # this worker's sender of invalidation messages
    listener: InvalidationListener  # this worker's receiver of them
    refresher: Refresher  # what another worker's write dropped from L1, read again
    loader: MissLoader  # misses read and rendered on the event loop
    templates: TemplateStore  # Django's headers of the edge's answers, learnt per route and scheme
    documents: KeptDocuments  # the key set and discovery document, as Django answered them
    _sync_loop: _SyncLoop = field(default_factory=lambda: _SyncLoop())

    @property
    def origin(self) -> str:
        """This process's name in the invalidation messages it sends."""
        return self._sync_loop.origin

    def sync_loop(self) -> asyncio.AbstractEventLoop:
        """The loop on which sync code runs an async call (`users.cache.sync.run_sync`): the
        worker's own while it runs, else one this process keeps in a thread for the purpose."""
        return self.broadcaster.loop or self._sync_loop.get()

    async def start(self) -> None:
        """Start what a worker runs beside its requests (the ASGI lifespan's startup)."""
        await self.db.start()  # first: the listener's probes read the unsent invalidations with it
        self.broadcaster.start()
        await self.listener.start()
        self.ended_sessions.start()
        await self.signing_keys.start()  # before the first request: it signs and verifies with them

    def stops(self) -> tuple[tuple[str, Callable[[], Awaitable[None]]], ...]:
        """What `users.lifespan` stops at shutdown, in order, each under its own bound."""
        return (
            ("refresher", self.refresher.stop), ("loader", self.loader.stop),
            ("ended sessions", self.ended_sessions.stop), ("signing keys", self.signing_keys.stop),
            ("database pool", self.db.stop),
            ("broadcaster", self.broadcaster.stop), ("listener", self.listener.stop),
        )


class _SyncLoop:
    """An event loop in a daemon thread, for the sync callers of a process without a worker loop,
    and the process's name; both made again after a fork."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._origin = ""

    @property
    def origin(self) -> str:
        with self._lock:
            self._forked()
            return self._origin

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            self._forked()
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="user-cache-sync-calls", daemon=True).start()
            return self._loop

    def _forked(self) -> None:
        if self._pid != os.getpid():  # the first use, or a child (Celery's prefork): its own
            self._pid, self._origin, self._loop = os.getpid(), uuid.uuid4().hex, None


_current: Runtime | None = None


def current() -> Runtime:
    """This process's runtime."""
    runtime = _current
    if runtime is None:
        raise RuntimeError("no runtime: the users app is not ready")
    return runtime


def install(runtime: Runtime) -> Runtime | None:
    """Make `runtime` this process's (the lifespan's startup, a test's fixture); returns the one before."""
    global _current
    previous, _current = _current, runtime
    return previous
