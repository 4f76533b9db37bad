"""Misses without Django: the public row read with psycopg's async pool on the event loop, and
rendered into the very bytes and headers Django gave for another user.

Django answers the first miss of each scheme (http or https); its headers become the template,
in which only Content-Length and ETag change from user to user. The body is the same serializer
and renderer the view uses. Unknown and deleted users, and any failure (PostgreSQL away, the
pool busy), go to Django, which answers 404 or 503. The templates are forgotten when the worker
stops (the ASGI lifespan).
"""
import logging

from psycopg.rows import dict_row
from rest_framework.renderers import JSONRenderer

from sidus.edge import filled
from users.cache.answers import CachedResponse
from users.etags import body_etag
from users.loop_db import loop_db
from users.models import User
from users.serializers import UserPublicSerializer, representation

logger = logging.getLogger("users.cache")

_COLUMNS = ("id", "username", "first_name", "last_name", "bio", "date_joined", "updated_at")
_SQL = f'SELECT {", ".join(_COLUMNS)} FROM "user" WHERE id = %s AND deleted_at IS NULL'


class MissLoader:
    def __init__(self) -> None:
        self.templates: dict[bool, list[tuple[bytes, bytes]]] = {}

    async def stop(self) -> None:
        self.templates.clear()

    def learn(self, answer: CachedResponse) -> None:
        """Django's answer for one user: the headers every answer on this scheme will carry."""
        self.templates[answer.secure] = answer.headers

    async def load(self, user_id: int, secure: bool) -> CachedResponse | None:
        """The answer Django would give, or None: then ask Django."""
        template = self.templates.get(secure)
        if template is None:
            return None
        try:
            async with loop_db.connection() as conn:
                row = await (await conn.cursor(row_factory=dict_row).execute(_SQL, (user_id,))).fetchone()
        except Exception as exc:  # whatever it is, Django answers instead (503 if PostgreSQL is away)
            logger.debug("Miss loader fell back to Django: %r", exc)
            return None
        if row is None:
            return None
        return _render(User(**row), template, secure)  # CPU only: a DRF serializer and the JSON renderer

    def render(self, user: User, secure: bool) -> CachedResponse | None:
        """The answer Django would give for `user` as it is in memory (a writer's own row), or
        None before Django answered a first miss on this scheme."""
        template = self.templates.get(secure)
        return _render(user, template, secure) if template is not None else None


def _render(user: User, template: list[tuple[bytes, bytes]], secure: bool) -> CachedResponse:
    body = JSONRenderer().render(representation(UserPublicSerializer, user))
    values = {b"content-length": str(len(body)).encode(), b"etag": body_etag(body, user.updated_at).encode()}
    return CachedResponse.of(200, filled(template, values), body, secure)


loader = MissLoader()
