"""Misses without Django: the public row read with psycopg's async pool on the event loop, and
rendered into the very bytes and headers Django gave for another user.

Django answers the first miss of each scheme (http or https); its headers become the template
(the runtime's `TemplateStore`), in which only Content-Length and ETag change from user to user.
The body is the same serializer and renderer the view uses, the query the view's own queryset
(`users.profile.queries`). Unknown and deleted users, and any failure (PostgreSQL away, the pool busy),
go to Django, which answers 404 or 503.
"""
import logging

from rest_framework.renderers import JSONRenderer

from sidus.edge.answers import TemplateStore, body_of, render, shareable
from users.cache.answers import CachedResponse
from users.loop_db import LoopDatabase
from users.models import User
from users.profile import queries, routes
from users.profile.etags import body_etag
from users.profile.serializers import UserPublicSerializer, representation

logger = logging.getLogger("users.cache")

ROUTE = routes.PROFILE


class MissLoader:
    def __init__(self, db: LoopDatabase, templates: TemplateStore) -> None:
        self.db = db
        self.templates = templates

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
            async with self.db.connection() as conn:
                cursor = await conn.execute(queries.select_by_id(queries.PUBLIC_ROW, alive=True), [user_id])
                row = await cursor.fetchone()
        except Exception as exc:  # whatever it is, Django answers instead (503 if PostgreSQL is away)
            logger.debug("Miss loader fell back to Django: %r", exc)
            return None
        if row is None:
            return None
        return self.render(queries.user_from_row(queries.PUBLIC_ROW, row), secure)

    def render(self, user: User, secure: bool) -> CachedResponse | None:
        """The answer Django would give for `user` as it is in memory (a writer's own row), or
        None before Django answered a first miss on this scheme."""
        template = self.templates.get((ROUTE, secure))
        if template is None:
            return None
        body = JSONRenderer().render(representation(UserPublicSerializer, user))
        return CachedResponse.of(200, render(template, body, body_etag(body, user.updated_at).encode()), body, secure)
