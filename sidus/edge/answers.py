"""What the edge learns from Django's answers and replays: one template store, one render function.

An edge route answers with Django's own headers, learnt from the first answer Django gave on that
route and scheme; only the per-answer values change (Content-Length, ETag, Expires). It learns an
answer only if nothing in it can differ from one client to the next, judged from the answer
itself: a 200 in plain JSON, a Vary naming at most Accept and Accept-Encoding (which the edge's
own routing decides), and no Set-Cookie, Access-Control-* or Content-Language. Anything else is
never learnt, and its route stays Django's.
"""
import time
from collections.abc import Callable
from typing import Any

from django.utils.http import http_date

Headers = list[tuple[bytes, bytes]]
Key = tuple[str, bool]  # (the route's name, https)

_VARY_OK = frozenset({b"accept", b"accept-encoding"})
_PER_CLIENT = (b"set-cookie", b"content-language", b"access-control-")


def replayable(status: int, headers: Headers) -> bool:
    """Whether an answer's headers may be sent to every client of its route."""
    if status != 200:
        return False
    media_type = b""
    for name, value in headers:
        name = name.lower()
        if name.startswith(_PER_CLIENT):
            return False
        if name == b"vary" and not {v.strip().lower() for v in value.split(b",")} <= _VARY_OK:
            return False
        if name == b"content-type":
            media_type = value.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json"


def shareable(status: int, headers: Headers) -> bool:
    """`replayable`, and a Cache-Control that lets a shared cache keep the answer itself."""
    for name, value in headers:
        if name.lower() == b"cache-control" and {b"private", b"no-store", b"no-cache"} & {
            v.split(b"=", 1)[0].strip().lower() for v in value.split(b",")
        }:
            return False
    return replayable(status, headers)


class TemplateStore:
    """Django's headers per route and scheme, learnt by a worker and forgotten when it stops."""

    def __init__(self) -> None:
        self._templates: dict[Key, Headers] = {}

    def get(self, key: Key) -> Headers | None:
        return self._templates.get(key)

    def learn(self, key: Key, status: int, headers: Headers) -> bool:
        """Keep Django's headers of this answer for `key` if they are `replayable`."""
        if not replayable(status, headers):
            return False
        self._templates[key] = list(headers)
        return True

    def clear(self) -> None:
        self._templates.clear()


def render(template: Headers, body: bytes, etag: bytes) -> Headers:
    """Django's headers from the template, in its order, with this answer's Content-Length and
    ETag, and an Expires of now where Django set one (its never-cache answers)."""
    values = {b"content-length": str(len(body)).encode(), b"etag": etag}
    return [(name, values.get(name.lower(), value) if name.lower() != b"expires" else _now())
            for name, value in template]


def _now() -> bytes:
    return http_date(time.time()).encode()


async def kept_answer(app: Callable, scope: dict, receive: Callable) -> tuple[dict | None, list[dict]]:
    """The app's whole answer, kept instead of sent: its start message (None if it sent none
    first) and every message, for the edge to learn from and then pass on."""
    messages: list[dict] = []

    async def keep(message: dict) -> None:
        messages.append(message)

    await app(scope, receive, keep)
    start = messages[0] if messages and messages[0]["type"] == "http.response.start" else None
    return start, messages


def body_of(messages: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
