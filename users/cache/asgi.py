"""The ASGI layer before Django: answers plain JSON reads of a public profile from L1, then L2,
with no thread hop, 304 included; on a miss it keeps the exact bytes and headers Django produced."""
import re
from collections.abc import Callable

from django.urls import reverse

from sidus.edge import accepts_plain_json, host_allowed, is_secure, kept_answer, proxy_ssl_header
from users.cache import shared
from users.cache.answers import CachedResponse, etag_matches
from users.cache.keys import CACHEABLE_HEADER, CAPTURE_SCOPE_KEY
from users.cache.loader import loader
from users.cache.local import local_cache


def user_detail_path() -> re.Pattern[str]:
    """/api/v1/users/{id}/, the id in canonical form (users.models.user_id_from) as group 1."""
    prefix, suffix = reverse("user-detail", kwargs={"pk": 123456789}).split("123456789")
    return re.compile(re.escape(prefix) + r"([1-9][0-9]{0,17})" + re.escape(suffix) + r"\Z")


class UserCacheMiddleware:
    """Serves GET/HEAD /api/v1/users/{id}/ from L1, else L2, before Django; fills both from Django.

    Only plain JSON requests take this path (no query string, `accepts_plain_json`, an allowed
    Host): everything else goes to Django untouched. A miss is read by the miss loader once Django
    has answered one (its headers are the template), else by Django. `If-None-Match` is answered
    here on every tier: Django is asked without it, so that the answer it gives can be kept.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.cache = local_cache
        self._path: re.Pattern[str] | None = None
        self._proxy_ssl: tuple[bytes, bytes] | None = None
        self._ids: dict[str, int] = {}  # profile paths seen, and their user id: no regex on a hit

    def _setup(self) -> None:
        self._path = user_detail_path()
        self._proxy_ssl = proxy_ssl_header()

    def _read(self, scope: dict) -> tuple[int, bool, bytes | None] | None:
        """(user id, secure, If-None-Match) of a request this layer may answer; None for Django's."""
        if scope["method"] not in ("GET", "HEAD") or scope["query_string"]:
            return None
        if self._path is None:
            self._setup()
        path = scope["path"]
        user_id = self._ids.get(path)
        if user_id is None:
            match = self._path.match(path)
            if match is None:
                return None
            if len(self._ids) >= _KNOWN_PATHS:
                self._ids.clear()
            user_id = self._ids[path] = int(match.group(1))
        host = accept = if_none_match = proxy_value = None
        for name, value in scope["headers"]:  # one pass over the headers
            if name == b"host":
                if host is not None:
                    return None  # Django joins repeated Host headers and refuses the result: so do we
                host = value
            elif name == b"accept":
                accept = value
            elif name == b"if-none-match":
                if_none_match = value
            elif self._proxy_ssl is not None and name == self._proxy_ssl[0] and proxy_value is None:
                proxy_value = value
        if host is None or not host_allowed(host):
            return None
        if accept is not None and not accepts_plain_json(accept):
            return None
        secure = scope.get("scheme") == "https" if proxy_value is None else is_secure(scope, proxy_value)
        return user_id, secure, if_none_match

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        request = self._read(scope) if scope["type"] == "http" else None
        if request is None:
            return await self.app(scope, receive, send)
        user_id, secure, if_none_match = request
        answer = self.cache.get(user_id)
        if answer is not None and answer.secure == secure:
            start, body = _messages(scope, answer, b"L1", if_none_match)
            await send(start)
            return await send(body)
        token = self.cache.token(user_id)
        answer, generation = await shared.read_answer(user_id)
        if answer is not None and answer.secure == secure:
            self.cache.set(user_id, answer, token)
            start, body = _messages(scope, answer, b"L2", if_none_match)
            await send(start)
            return await send(body)
        if scope["method"] != "GET":
            return await self.app(scope, receive, send)
        answer = await loader.load(user_id, secure)
        if answer is None:
            start, messages, marked = await self._ask_django(scope, receive, user_id)
            answer = _answer_of(start, messages, secure) if marked else None
            if answer is None:
                for message in messages:
                    await send(message)
                return
            loader.learn(answer)
        self.cache.set(user_id, answer, token)
        start, body = _messages(scope, answer, b"MISS", if_none_match)
        await send(start)
        await send(body)
        # Kept in L2 once the client has its answer: the next reader of another worker may miss
        # too meanwhile, but the reader waits one Redis round trip less (the generation guards it).
        await shared.store_answer(user_id, answer, generation)

    async def _ask_django(
        self, scope: dict, receive: Callable, user_id: int
    ) -> tuple[dict | None, list[dict], bool]:
        """Django's whole answer (`kept_answer`), asked without conditional headers (the layer
        answers those), and whether the view marked it as the public representation of `user_id`."""
        headers = [(n, v) for n, v in scope["headers"] if n not in _CONDITIONAL_HEADERS]
        start, messages = await kept_answer(self.app, {**scope, "headers": headers, CAPTURE_SCOPE_KEY: True}, receive)
        marker, marked = CACHEABLE_HEADER.lower().encode(), False
        for message in messages:
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() != marker]
                marked = (marker, str(user_id).encode()) in ((n.lower(), v) for n, v in message.get("headers", []))
                message["headers"] = kept
        return start, messages, marked


_KNOWN_PATHS = 10_000  # then forgotten all at once: a bound, whatever paths clients make up
_CONDITIONAL_HEADERS = frozenset({b"if-none-match", b"if-match", b"if-modified-since", b"if-unmodified-since"})


def _answer_of(start: dict | None, messages: list[dict], secure: bool) -> CachedResponse | None:
    if start is None or start["status"] != 200:
        return None
    body = b"".join(m.get("body", b"") for m in messages[1:] if m["type"] == "http.response.body")
    return CachedResponse.of(start["status"], start["headers"], body, secure)


def _messages(scope: dict, answer: CachedResponse, tier: bytes, if_none_match: bytes | None) -> tuple[dict, dict]:
    """The two ASGI messages of `answer` from `tier`: its 200 (no body for HEAD), or a 304."""
    if if_none_match is not None and etag_matches(if_none_match, answer.etag):
        start = {"type": "http.response.start", "status": 304, "headers": answer.headers_for(tier, not_modified=True)}
        return start, {"type": "http.response.body", "body": b""}
    start = {"type": "http.response.start", "status": answer.status, "headers": answer.headers_for(tier)}
    return start, {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else answer.body}
