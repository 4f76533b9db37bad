"""Which sessions have ended, as each worker knows it without a query per request.

PostgreSQL holds the sessions (`users.models.Session`): a token whose session has ended answers
401. Each worker keeps the ids of the sessions ended within the last ACCESS_TOKEN_LIFETIME (an
older one's access tokens have expired, and its refresh token is checked against the row) and
reads what ended since every quarter of USER_CACHE_MAX_STALENESS, on its event loop. It trusts
that copy only while its last read began less than USER_CACHE_MAX_STALENESS ago; otherwise
(PostgreSQL slow or away, or a process that runs no reader: Celery, the shell, in-process tests)
the session's row is asked. So an ended session reaches every worker within the staleness bound,
and stays ended whatever happens to Redis, which plays no part.
"""
import asyncio
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone

from users.loop_db import LoopDatabase, read_every
from users.models import Session
from users.runtime import current

logger = logging.getLogger(__name__)

# Read again each time: a session whose ending committed a little after its `ended_at` (a slow
# transaction) is still seen. Ids read twice are simply kept.
_OVERLAP = timedelta(seconds=60)


def _ended_since_sql() -> str:
    query = Session.objects.filter(ended_at__gte=timezone.now()).values_list("id", "ended_at").query
    sql, params = query.get_compiler(DEFAULT_DB_ALIAS).as_sql()
    if len(params) != 1:
        raise ValueError(f"expected one parameter: {params!r}")
    return sql


class EndedSessions:
    """This worker's copy of the sessions ended lately: `ended(sid)` answers from memory."""

    def __init__(self, db: LoopDatabase) -> None:
        self.db = db
        self._ended: dict[str, datetime] = {}  # sid (hex) -> ended_at
        self._fresh_until = 0.0
        self._since: datetime | None = None
        self._task: asyncio.Task | None = None
        self._sql: str | None = None

    @property
    def fresh(self) -> bool:
        """Whether the copy may answer: its last read began within the staleness bound."""
        return time.monotonic() <= self._fresh_until

    def ended(self, session_id: str) -> bool:
        """Whether `session_id` is among the ended ones this copy holds (ask `fresh` first)."""
        return session_id in self._ended

    def note(self, session_ids: list[uuid.UUID], ended_at: datetime) -> None:
        """Sessions this process has just ended: known here at once, before the next read."""
        for session_id in session_ids:
            self._ended[session_id.hex] = ended_at

    async def read(self) -> None:
        """What ended since the last read (since ACCESS_TOKEN_LIFETIME ago, the first time)."""
        began, now = time.monotonic(), timezone.now()
        lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
        since = self._since if self._since is not None else now - lifetime
        if self._sql is None:
            self._sql = _ended_since_sql()
        async with self.db.connection() as connection:
            rows = await (await connection.execute(self._sql, [since])).fetchall()
        for session_id, ended_at in rows:
            self._ended[session_id.hex] = ended_at
        horizon = now - lifetime - _OVERLAP
        for session_id in [sid for sid, at in list(self._ended.items()) if at < horizon]:
            self._ended.pop(session_id, None)  # in place: `note` may add from another thread meanwhile
        self._since = now - _OVERLAP
        self._fresh_until = began + settings.USER_CACHE_MAX_STALENESS

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ended-sessions")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._fresh_until = 0.0
        self._since = None
        self._ended.clear()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        """A read now, then one every quarter of the bound; while PostgreSQL is away the copy is not
        fresh, and each check asks the session's row."""
        await read_every(self.read, interval=settings.USER_CACHE_MAX_STALENESS / 4, logger=logger,
                         failing="Ended sessions not read, each check asks PostgreSQL: %r", now=True)


def session_key(session_id: Any) -> uuid.UUID | None:
    """The `Session` id a token's `sid` names; None for anything else (the token's signature was
    ours, so that is an older form of sid, which names no row)."""
    try:
        return uuid.UUID(hex=session_id)
    except (TypeError, ValueError):
        return None


def seen_since() -> datetime:
    """A session last seen before this has no valid token left: its refresh token expired, and
    every access token with it (REFRESH_TOKEN_LIFETIME since the login or the last refresh)."""
    return timezone.now() - settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]


def session_ended(session_id: str) -> bool:
    """Whether the session has ended: from this worker's copy while it is fresh, else its row
    (sync code only: DRF's authentication, the refresh and the account views)."""
    ended_sessions = current().ended_sessions
    if ended_sessions.fresh:
        return ended_sessions.ended(session_id)
    key = session_key(session_id)
    return key is not None and Session.objects.filter(pk=key, ended_at__isnull=False).exists()
