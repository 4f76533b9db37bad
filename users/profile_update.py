"""PATCH of one's own names and bio, before Django: the write most clients make, on the event loop.

Through Django a PATCH costs a thread, the middleware, DRF's request cycle, a ModelSerializer
built per request and an ORM save: about 8 ms of CPU on a 2-core machine, most of it the
machinery. This layer does the same work with the same parts and no thread hop:
- the token: simplejwt's validation, then the row's password fingerprint, active, not deleted,
  and the logout denylist (users.authentication);
- the rate limit: the same `update` counters (users.ratelimits), in a pool thread while on;
- the fields: UserUpdateSerializer's own fields, each validated as DRF validates them;
- the write: `services.profile_update_async`, which invalidates both tiers and every worker;
- the answer: UserPrivateSerializer's JSON in the headers Django gave the first such PATCH on
  this route and scheme; only Content-Length, ETag and Expires change.
Everything else goes to Django with the body read here handed on: username and email changes
(uniqueness, emails to send), If-Match, other media types, and whatever Django would refuse (it
words the 400, 401, 403, 413, 415 and 429) or fail (PostgreSQL away: its 503).
"""
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils.http import http_date
from psycopg.rows import dict_row
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from sidus.edge import accepts_plain_json, filled, host_allowed, is_secure, kept_answer, proxy_ssl_header
from users import ratelimits, services
from users.authentication import token_is_current_async, user_can_authenticate, validated_token
from users.cache.asgi import user_detail_path
from users.etags import body_etag
from users.loop_db import loop_db
from users.models import User, user_id_from
from users.serializers import UserPrivateSerializer, UserUpdateSerializer, representation

logger = logging.getLogger(__name__)

_JSON = frozenset({b"application/json", b"application/json; charset=utf-8", b"application/json;charset=utf-8"})
_USER_SQL = 'SELECT id, password, session_epoch, is_active, deleted_at FROM "user" WHERE id = %s'
Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class _Patch:
    """A PATCH this layer may answer, as far as can be told without I/O."""

    route: str  # "me" or "detail": their answers differ in Allow
    secure: bool
    token: Any
    user_id: int
    data: dict[str, str]
    remote_addr: str
    forwarded_for: str | None


class ProfileUpdateMiddleware:
    def __init__(self, app: Callable) -> None:
        self.app = app
        self.templates: dict[tuple[str, bool], Headers] = {}
        self._me: str | None = None
        self._detail: re.Pattern[str] | None = None
        self._fields: dict[str, Any] = {}

    def _setup(self) -> None:
        self._me = reverse("user-me")
        self._detail = user_detail_path()
        self._fields = {name: UserUpdateSerializer().fields[name] for name in services.TEXT_FIELDS}

    def _route(self, scope: dict) -> tuple[str, int | None] | None:
        if scope["type"] != "http" or scope["method"] != "PATCH" or scope["query_string"]:
            return None
        if self._me is None:
            self._setup()
        if scope["path"] == self._me:
            return "me", None
        match = self._detail.match(scope["path"])
        return ("detail", int(match.group(1))) if match else None

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        route = self._route(scope)
        if route is None:
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return  # the client left, or the body limit answered 413
        replay = _replaying(body, receive)
        patch = self._read(scope, route, body)
        if patch is None:
            return await self.app(scope, replay, send)
        template = self.templates.get((patch.route, patch.secure))
        if template is None:
            return await self._ask_django(scope, replay, send, (patch.route, patch.secure))
        user = await self._write(patch)
        if user is None:
            return await self.app(scope, replay, send)
        await _answer(send, user, template)

    def _read(self, scope: dict, route: tuple[str, int | None], body: bytes) -> _Patch | None:
        """The PATCH, if it is one this layer answers: no I/O, and no refusal worded here."""
        host = authorization = content_type = forwarded_for = proxy_value = None
        accept = b""
        proxy_ssl = proxy_ssl_header()
        for name, value in scope["headers"]:
            if name == b"host":
                if host is not None:
                    return None  # Django joins repeated headers: these would no longer parse
                host = value
            elif name == b"authorization":
                if authorization is not None:
                    return None
                authorization = value
            elif name == b"content-type":
                if content_type is not None:
                    return None
                content_type = value
            elif name == b"accept":
                accept = accept + b"," + value if accept else value
            elif name == b"if-match":
                return None  # the precondition needs the row locked: Django's path does it
            elif name == b"x-forwarded-for":
                forwarded_for = value if forwarded_for is None else forwarded_for + b"," + value
            elif proxy_ssl is not None and name == proxy_ssl[0] and proxy_value is None:
                proxy_value = value
        if host is None or not host_allowed(host) or not accepts_plain_json(accept):
            return None
        if content_type is None or content_type.lower() not in _JSON or authorization is None:
            return None
        data = self._validated(body)
        token = validated_token(authorization) if data else None
        user_id = user_id_from(str(token.get(jwt_settings.USER_ID_CLAIM))) if token is not None else None
        if user_id is None or route[1] not in (None, user_id):
            return None
        client = scope.get("client")
        return _Patch(route[0], is_secure(scope, proxy_value), token, user_id, data, client[0] if client else "",
                      forwarded_for.decode("latin-1") if forwarded_for is not None else None)

    def _validated(self, body: bytes) -> dict[str, str] | None:
        """The fields as UserUpdateSerializer would validate them, when they are only text fields."""
        try:
            data = json.loads(body.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            return None
        if not isinstance(data, dict) or not data or not data.keys() <= self._fields.keys():
            return None
        if not all(isinstance(value, str) for value in data.values()):
            return None
        try:
            return {name: self._fields[name].run_validation(value) for name, value in data.items()}
        except ValidationError:
            return None

    async def _write(self, patch: _Patch) -> User | None:
        """The updated user, or None when Django must answer (a refusal, or PostgreSQL away)."""
        try:
            async with loop_db.connection() as connection:
                cursor = connection.cursor(row_factory=dict_row)
                row = await (await cursor.execute(_USER_SQL, (patch.user_id,))).fetchone()
        except Exception as exc:  # whatever it is, Django answers instead (503 if PostgreSQL is away)
            logger.debug("Lean PATCH fell back to Django: %r", exc)
            return None
        user = User(**row) if row is not None else None
        if not user_can_authenticate(user) or not await token_is_current_async(patch.token, user):
            return None
        if ratelimits.rates_for("update"):
            meta = {"REMOTE_ADDR": patch.remote_addr}
            if patch.forwarded_for is not None:
                meta["HTTP_X_FORWARDED_FOR"] = patch.forwarded_for
            caller = ratelimits.Caller(user, meta)
            if await sync_to_async(ratelimits.hit, thread_sensitive=False)(caller, "update") is not None:
                return None  # Django counts once more and answers 429
        try:
            return await services.profile_update_async(
                user_id=user.pk, password=user.password, session_epoch=user.session_epoch, data=patch.data,
                secure=patch.secure,
            )
        except Exception as exc:
            logger.debug("Lean PATCH fell back to Django: %r", exc)
            return None

    async def _ask_django(self, scope: dict, receive: Callable, send: Callable, key: tuple[str, bool]) -> None:
        """Django answers the first PATCH of each route and scheme; its 200's headers are the template."""
        start, messages = await kept_answer(self.app, scope, receive)
        if start is not None and start["status"] == 200:
            headers = list(start.get("headers", []))
            if not any(name.lower() == b"set-cookie" for name, _ in headers):
                self.templates[key] = headers
        for message in messages:
            await send(message)


async def _read_body(receive: Callable) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Callable) -> Callable:
    """A receive that gives Django the body read here, then the client's later messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> dict:
        return pending.pop() if pending else await receive()

    return replay


async def _answer(send: Callable, user: User, template: Headers) -> None:
    body = JSONRenderer().render(representation(UserPrivateSerializer, user))
    values = {
        b"content-length": str(len(body)).encode(),
        b"etag": body_etag(body, user.updated_at).encode(),
        b"expires": http_date(time.time()).encode(),
    }
    await send({"type": "http.response.start", "status": 200, "headers": filled(template, values)})
    await send({"type": "http.response.body", "body": body})
