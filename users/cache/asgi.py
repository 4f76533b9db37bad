"""The ASGI layer before Django: answers plain JSON reads of a public profile from L1, and fills
L1 with the exact bytes and headers Django produced."""
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import reverse

from users.cache.keys import CACHEABLE_HEADER, CAPTURE_SCOPE_KEY
from users.cache.local import local_cache


@dataclass(frozen=True)
class CachedResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    secure: bool


# Media ranges for which DRF's negotiation picks the JSON renderer with its plain content type.
_JSON_RANGES = frozenset({b"application/json", b"application/*", b"*/*"})
_HARMLESS_RANGES = _JSON_RANGES | {b"text/plain"}  # no renderer of ours serves text/plain


@functools.lru_cache(maxsize=256)
def accepts_plain_json(accept: bytes) -> bool:
    """True if Django would answer this Accept header with the JSON bytes L1 holds.

    Anything with parameters (`; indent=4`, `; q=0.9` changes DRF's output) or that could pick
    the browsable API (text/html, text/*) goes to Django.
    """
    if not accept.strip():
        return True
    ranges = {part.strip() for part in accept.lower().split(b",")}
    return all(b";" not in r for r in ranges) and ranges <= _HARMLESS_RANGES and bool(ranges & _JSON_RANGES)


class UserCacheMiddleware:
    """Serves L1 hits of GET /api/v1/users/{id}/ before Django; fills L1 from Django's answers.

    Only plain JSON GET/HEAD requests take this path (no query string, `accepts_plain_json`, an
    allowed Host): everything else, and every miss, goes to Django, whose bytes and headers are
    what L1 stores.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.cache = local_cache
        self._path: re.Pattern[str] | None = None
        self._allowed_hosts: list[str] | None = None

    def _setup(self) -> None:
        prefix, suffix = reverse("user-detail", kwargs={"pk": 123456789}).split("123456789")
        self._path = re.compile(re.escape(prefix) + r"([1-9][0-9]{0,17})" + re.escape(suffix) + r"\Z")
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        self._allowed_hosts = allowed

    def _cacheable_id(self, scope: dict) -> int | None:
        if scope["method"] not in ("GET", "HEAD") or scope.get("query_string"):
            return None
        if self._path is None:
            self._setup()
        match = self._path.match(scope["path"])
        if match is None:
            return None
        host = accept = b""
        for name, value in scope["headers"]:
            if name == b"host":
                if host:
                    return None  # Django joins repeated Host headers and refuses the result: so do we
                host = value
            elif name == b"accept":
                accept = value
        if not accepts_plain_json(accept):
            return None
        domain, _ = split_domain_port(host.decode("latin-1"))
        if not domain or not validate_host(domain, self._allowed_hosts):
            return None
        return int(match.group(1))

    @staticmethod
    def _is_secure(scope: dict) -> bool:
        if scope.get("scheme") == "https":
            return True
        proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        if proxy_header:
            name = proxy_header[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
            return any(n == name and v.decode("latin-1") == proxy_header[1] for n, v in scope["headers"])
        return False

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        user_id = self._cacheable_id(scope) if scope["type"] == "http" else None
        if user_id is None:
            return await self.app(scope, receive, send)
        secure = self._is_secure(scope)
        cached = self.cache.get(user_id)
        if cached is not None and cached.secure == secure:
            await send({"type": "http.response.start", "status": cached.status, "headers": cached.headers})
            body = b"" if scope["method"] == "HEAD" else cached.body
            await send({"type": "http.response.body", "body": body})
            return
        if scope["method"] != "GET":
            return await self.app(scope, receive, send)
        await self.app({**scope, CAPTURE_SCOPE_KEY: True}, receive, self._capturing_send(send, user_id, secure))

    def _capturing_send(self, send: Callable, user_id: int, secure: bool) -> Callable:
        token = self.cache.token(user_id)
        marker = CACHEABLE_HEADER.lower().encode()
        expected = str(user_id).encode()
        state: dict[str, Any] = {"headers": None, "body": []}

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(n, v) for n, v in message.get("headers", []) if n.lower() != marker]
                if message["status"] == 200 and (marker, expected) in (
                    (n.lower(), v) for n, v in message.get("headers", [])
                ):
                    state["headers"] = [(n, b"L1" if n.lower() == b"x-cache" else v) for n, v in headers]
                    state["status"] = message["status"]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and state["headers"] is not None:
                state["body"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    response = CachedResponse(state["status"], state["headers"], b"".join(state["body"]), secure)
                    self.cache.set(user_id, response, token)
            await send(message)

        return capture
