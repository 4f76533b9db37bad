"""PostgreSQL on the event loop, for what the edge reads and writes without Django: the
cache's miss loader and the lean profile update.

Django's connection settings on psycopg's async pool, in autocommit: each statement is its own
transaction. Started and stopped with each worker by the ASGI lifespan; elsewhere (shell, Celery,
tests that do not start it) `connection()` raises and the callers let Django do the work. Each
process's is its runtime's (`users.runtime`).
"""
import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from django.conf import settings
from django.db import connections
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool


def conninfo() -> dict[str, Any]:
    """Django's connection settings, as psycopg's own connect() takes them."""
    params = connections["default"].get_connection_params()
    info = {k: v for k, v in params.items() if k not in ("cursor_factory", "context", "prepare_threshold")}
    if settings.DATABASE_PGBOUNCER:
        info["prepare_threshold"] = None  # a prepared statement lives on one server connection
    return info


class LoopDatabase:
    def __init__(self) -> None:
        self.pool: AsyncConnectionPool | None = None

    async def start(self) -> None:
        connection = connections["default"]
        # Django sets each of its connections to its own time zone (UTC): so do these, or a server in
        # another zone would give `updated_at` another offset, and the edge's ETags would not be Django's.
        # A SET, not a startup option: PgBouncer refuses `options`, and restores a client's TimeZone
        # on every server connection it hands that client.
        time_zone = connection.timezone_name

        async def configure(conn: AsyncConnection[Any]) -> None:
            await conn.execute(sql.SQL("SET TIME ZONE {}").format(sql.Literal(time_zone)))

        size = settings.LOOP_DB_POOL_SIZE
        # A fixed size, opened in the background at start: a burst of misses (a write's refreshes
        # and readers together) must not wait for a connection to be opened, nor after a quiet spell.
        self.pool = AsyncConnectionPool(
            kwargs={**conninfo(), "autocommit": True}, configure=configure, min_size=size, max_size=size,
            timeout=settings.DATABASES["default"].get("OPTIONS", {}).get("pool", {}).get("timeout", 5.0),
            open=False, name="loop-db",
        )
        await self.pool.open(wait=False)

    @property
    def running(self) -> bool:
        """Started on this process's worker loop."""
        return self.pool is not None

    async def stop(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close()

    def connection(self) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
        """A pooled connection; raises RuntimeError when the pool is not running in this process."""
        if self.pool is None:
            raise RuntimeError("the event loop's database pool is not started")
        return self.pool.connection()


async def read_every(read: Callable[[], Awaitable[None]], *, interval: float, logger: logging.Logger,
                     failing: str, now: bool = False) -> None:
    """`read` every `interval` seconds (the first at once if `now`), forever (until cancelled): the
    readers that keep a worker's copies of PostgreSQL's rows fresh (the ended sessions, the
    signing keys). While PostgreSQL is away each copy goes on as its owner says; `failing` is
    logged once per outage, with the error."""
    failed = False
    while True:
        if not now:
            await asyncio.sleep(interval)
        now = False
        try:
            await read()
            failed = False
        except Exception as exc:  # noqa: BLE001  any error at all: the next round tries again
            if not failed:
                logger.warning(failing, exc)
                failed = True
