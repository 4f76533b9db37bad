"""Misses without Django: the public row read with psycopg's async pool on the event loop, and
rendered into the very bytes and headers Django gave for another user.

Django answers the first miss of each scheme (http or https); its headers become the template
(the runtime's `TemplateStore`), in which only Content-Length and ETag change from user to user.
The body is the same serializer and renderer the view uses, the query the view's own queryset
(`users.profile.queries`). The misses of one turn of the loop share one query (`WHERE id = ANY(...)`,
a `TurnBatcher`), each id once; so do the lean PATCHes' reads of their rows (`row`). Unknown and
deleted users, and any failure (PostgreSQL away, the pool busy), go to Django, which answers 404
or 503.
"""
import logging
from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import JSONRenderer

from sidus.edge.answers import TemplateStore, body_of, render, shareable
from users.cache.answers import CachedResponse
from users.cache.batches import TurnBatcher
from users.loop_db import LoopDatabase
from users.models import User
from users.profile import queries, routes
from users.profile.etags import body_etag
from users.profile.serializers import UserPublicSerializer, representation

logger = logging.getLogger("users.cache")

ROUTE = routes.PROFILE
_ID = queries.PUBLIC_ROW.index("id")


class MissLoader:
    def __init__(self, db: LoopDatabase, templates: TemplateStore) -> None:
        self.db = db
        self.templates = templates
        self._rows: TurnBatcher[tuple[str, int, int], tuple | None] = TurnBatcher(self._read_rows, unique=True)

    async def stop(self) -> None:
        self.templates.clear()

    def learn(self, start: dict | None, messages: list[dict], secure: bool) -> CachedResponse | None:
        """Django's answer for one profile, as the edge may keep it (`shareable`), or None; its
        headers become the template of every answer on this scheme."""
        if start is None or not shareable(start["status"], start.get("headers", [])):
            return None
        self.templates.learn((ROUTE, secure), start["status"], start["headers"])
        return CachedResponse.of(start["status"], start["headers"], body_of(messages[1:]), secure)

    async def load(self, user_id: int, secure: bool) -> CachedResponse | None:
        """The answer Django would give, or None: then ask Django."""
        if self.templates.get((ROUTE, secure)) is None:
            return None
        try:
            row = await self.row(queries.select_by_ids(queries.PUBLIC_ROW, alive=True), user_id, id_at=_ID)
        except Exception as exc:  # whatever it is, Django answers instead (503 if PostgreSQL is away)
            logger.debug("Miss loader fell back to Django: %r", exc)
            return None
        if row is None:
            return None
        return self.render(dict(zip(queries.PUBLIC_ROW, row)), secure)  # no model instance: DRF reads a dict

    async def row(self, query: str, user_id: int, *, id_at: int) -> tuple | None:
        """The row of `user_id` that `query` reads (its one parameter a list of ids, `= ANY(%s)`; the
        id at `id_at` in each row), or None. The calls of one turn of the loop share one execution
        of each query, and one pooled connection."""
        return await self._rows.submit((query, id_at, user_id))

    async def _read_rows(self, keys: list[tuple[str, int, int]]) -> list[tuple | None]:
        ids: dict[tuple[str, int], list[int]] = {}
        for query, id_at, user_id in keys:
            ids.setdefault((query, id_at), []).append(user_id)
        found: dict[tuple[str, int], tuple] = {}
        async with self.db.connection() as conn:
            for (query, id_at), user_ids in ids.items():
                cursor = await conn.execute(query, [user_ids])
                found.update(((query, row[id_at]), row) for row in await cursor.fetchall())
        return [found.get((query, user_id)) for query, _, user_id in keys]

    def render(self, profile: User | Mapping[str, Any], secure: bool) -> CachedResponse | None:
        """The answer Django would give for `profile` (a user as it is in memory, a writer's own
        row; or its public columns by name, `queries.PUBLIC_ROW`), or None before Django answered a
        first miss on this scheme."""
        template = self.templates.get((ROUTE, secure))
        if template is None:
            return None
        body = JSONRenderer().render(representation(UserPublicSerializer, profile))
        updated_at = profile["updated_at"] if isinstance(profile, Mapping) else profile.updated_at
        return CachedResponse.of(200, render(template, body, body_etag(body, updated_at).encode()), body, secure)
