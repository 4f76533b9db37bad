"""Invalidations that could not reach Redis, kept in PostgreSQL until some worker sends them.

A write whose worker cannot reach Redis (its link cut or hung, or Redis away for everyone) can
neither delete L2 nor bump the generation nor tell the others, and its own worker resends only
once it reaches Redis again: meanwhile the others would serve the old profile from L2 and L1. So
its ids also go to this ledger, in the database the write just committed to. Every worker's probe
reads it (`catch_up`): it reads those users from PostgreSQL only (`gates`), drops them from its
L1, and sends their invalidation itself. A row is removed only by a send made after it was last
written (its `version`), so a later failed write of the same user is never forgotten.
"""
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection as django_connection

from users.loop_db import LoopDatabase
from users.models import UnsentInvalidation

TABLE = UnsentInvalidation._meta.db_table
LIMIT = 1000  # ids per probe: a longer ledger is sent over the next probes

RECORD = (f"INSERT INTO {TABLE} (user_id, version) SELECT unnest(%s::bigint[]), 1 "
          f"ON CONFLICT (user_id) DO UPDATE SET version = {TABLE}.version + 1")
READ = f"SELECT user_id, version FROM {TABLE} ORDER BY user_id LIMIT %s"
REMOVE = (f"DELETE FROM {TABLE} USING unnest(%s::bigint[], %s::bigint[]) AS sent(user_id, version) "
          f"WHERE {TABLE}.user_id = sent.user_id AND {TABLE}.version = sent.version RETURNING {TABLE}.user_id")


class UnsentLedger:
    """The ledger as this process reads and writes it, and the users it keeps out of L2."""

    def __init__(self, db: LoopDatabase, limit: int = LIMIT) -> None:
        self.db = db
        self.limit = limit
        # The users not to read from L2 in this process: the ledger as its last reading (or this
        # process's own record) found it; every user while it held more than one reading takes.
        self.gated: frozenset[int] = frozenset()
        self.overflowing = False

    def gates(self, user_id: int) -> bool:
        """Whether L2 may be older than the last write of `user_id`."""
        return self.overflowing or user_id in self.gated

    async def record(self, user_ids: list[int]) -> None:
        """Keep `user_ids` until a worker sends their invalidation; this process stops reading them
        from L2 at once. Raises if PostgreSQL fails (the caller's own resend still holds them)."""
        self.gated = self.gated | frozenset(user_ids)
        await self.execute(RECORD, [list(user_ids)])

    async def catch_up(self, send: Callable[[list[int]], Awaitable[None]],
                       forget: Callable[[list[int]], object]) -> None:
        """One probe's turn: read the ledger, gate and `forget` (drop from L1) what it names, `send`
        their invalidation (raises if Redis fails: they stay), then remove the rows it covered."""
        before = self.gated
        rows = dict(await self.execute(READ, [self.limit], fetch=True))
        # What this process recorded during the read stays gated: the read may have missed its row.
        self.gated, self.overflowing = frozenset(rows) | (self.gated - before), len(rows) == self.limit
        if not rows:
            return
        forget(list(rows))
        await send(list(rows))
        removed = await self.execute(REMOVE, [list(rows), list(rows.values())], fetch=True)
        self.gated = self.gated - frozenset(user_id for user_id, in removed)  # a row written again since stays gated

    async def execute(self, query: str, params: list[Any], *, fetch: bool = False) -> list[tuple[Any, ...]]:
        """On the worker's pool, or Django's connection in a thread where none runs (shell, Celery)."""
        if not self.db.running:
            return await sync_to_async(_execute_sync, thread_sensitive=False)(query, params, fetch)
        async with self.db.connection() as connection:
            cursor = await connection.execute(query, params)
            return await cursor.fetchall() if fetch else []


def _execute_sync(query: str, params: list[Any], fetch: bool) -> list[tuple[Any, ...]]:
    try:
        with django_connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if fetch else []
    finally:
        django_connection.close()  # a thread of the executor's: its connection goes back now
