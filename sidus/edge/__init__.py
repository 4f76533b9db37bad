"""The edge: the one ASGI layer in front of Django, and the only one.

Every HTTP request goes through it once:
1. Its route is looked up in one table (`Route`s, each a URL name of Django's URLconf and the
   methods the edge may answer there). Requests of no route go on to Django untouched, but for
   their body.
2. A body, if the client announced one, is read here, once, under DATA_UPLOAD_MAX_MEMORY_SIZE
   (over it: 413, before anything is spooled to disk), and handed to Django with its length
   declared: a chunked body is read as the same body with a Content-Length is.
3. A routed request becomes one `EdgeRequest` (Django's header, host and scheme rules). Its
   route's `memory` may answer it at once, from memory and without I/O (a synchronous call: the
   hot path, with no coroutine of its own); else the route's handler answers it, or hands it to
   Django (`Django`), whose answer is then final.

Django is the oracle: a handler answers only what it can tell Django would answer the same way,
with the same validators, checks and columns, and with headers learnt from Django's own answers
(`answers`). Anything else, any doubt and any error is Django's. `Edge(..., routes=())` is the
same project with no fast path, which tests/test_differential.py compares against this one.
"""
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from rest_framework.utils import json

from sidus.edge.answers import kept_answer
from sidus.edge.request import (
    BodyTooLarge,
    EdgeRequest,
    Message,
    Receive,
    Scope,
    Send,
    read_body,
)
from sidus.http.exception_handler import request_too_large_detail

__all__ = ["Django", "Edge", "EdgeRequest", "Route"]


class Django:
    """Django, as a route's handler asks it: with the body the edge read, and the final word."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def answer(self, request: EdgeRequest, send: Send) -> None:
        scope, receive = request.for_django()
        await self.app(scope, receive, send)

    async def kept(self, request: EdgeRequest) -> tuple[dict | None, list[dict]]:
        """Django's whole answer, kept (`answers.kept_answer`) for the handler to learn from."""
        scope, receive = request.for_django()
        return await kept_answer(self.app, scope, receive)


Handler = Callable[[EdgeRequest, Any, Send, Django], Awaitable[None]]
# The two ASGI messages of an answer held in memory, or None: the handler decides.
Memory = Callable[[EdgeRequest, Any], tuple[Message, Message] | None]


@dataclass(frozen=True)
class Route:
    """Requests the edge may answer: `methods` on the URL named `name`. A URL with a `kwarg`
    (the user's id) passes its value through `parse`, which says None for values no object can
    have (then it is Django's 404). `memory`, if given, is tried before `handler`."""

    name: str
    methods: frozenset[str]
    handler: Handler
    kwarg: str | None = None
    parse: Callable[[str], Any] | None = None
    memory: Memory | None = None

    def pattern(self) -> re.Pattern[str]:
        marker = "0edge0"  # any value the URL's converter accepts, to split the reversed path around
        prefix, suffix = reverse(self.name, kwargs={self.kwarg: marker}).split(marker)
        return re.compile(re.escape(prefix) + r"([^/]+)" + re.escape(suffix) + r"\Z")


_NO_ROUTES: dict[str, "Route"] = {}
_KNOWN_PATHS = 256  # remembered paths, then forgotten all at once


class Edge:
    def __init__(self, django: Callable, *, routes: Iterable[Route], lifespan: Callable | None = None) -> None:
        self.django = django
        self.to_django = Django(self._django)  # through self.django, which a test may swap
        self.routes = tuple(routes)
        self.lifespan = lifespan
        self._urls: _Urls | None = None
        self._known: dict[str, tuple[dict[str, Route], Any]] = {}  # path -> routes by method, argument

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.lifespan is not None:
                return await self.lifespan(scope, receive, send)
            return await self.django(scope, receive, send)
        path = scope["path"]
        known = self._known.get(path)
        if known is None:
            known = self._routes_of(path)
        route, argument = known[0].get(scope["method"]), known[1]
        request = EdgeRequest(scope, receive)
        if request.has_body:
            try:
                request.body = await read_body(request)
            except BodyTooLarge:
                return await _refuse_too_large(send)
            if request.body is None:
                return  # the client left
        if route is None:
            return await self.to_django.answer(request, send)
        if route.memory is not None:
            answer = route.memory(request, argument)
            if answer is not None:
                await send(answer[0])
                return await send(answer[1])
        await route.handler(request, argument, send, self.to_django)

    async def _django(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.django(scope, receive, send)

    def _routes_of(self, path: str) -> tuple[dict[str, Route], Any]:
        """The routes of `path` by method, and its argument: a dict lookup for the exact paths, then
        one match per URL with an argument. The last few paths are remembered (a hot profile is
        looked up once); few, so that reads of countless ids do not fill memory for nothing."""
        urls = self._urls
        if urls is None:
            urls = self._urls = _urls_of(self.routes)
        known: tuple[dict[str, Route], Any] = (_NO_ROUTES, None)
        routes = urls.exact.get(path)
        if routes is not None:
            known = (routes, None)
        else:
            for pattern, parse, routes in urls.patterns:
                match = pattern.match(path)
                if match is not None and (value := parse(match.group(1))) is not None:
                    known = (routes, value)
                    break
        if len(self._known) >= _KNOWN_PATHS:
            self._known.clear()
        self._known[path] = known
        return known


@dataclass(frozen=True)
class _Urls:
    exact: dict[str, dict[str, Route]]  # path -> routes by method
    patterns: list[tuple[re.Pattern[str], Callable[[str], Any], dict[str, Route]]]


def _urls_of(routes: tuple[Route, ...]) -> _Urls:
    """The routes grouped by URL: exact paths, and patterns with their parse; routes by method."""
    grouped: dict[tuple[str, str | None], list[Route]] = {}
    for route in routes:
        grouped.setdefault((route.name, route.kwarg), []).append(route)
    urls = _Urls({}, [])
    for (name, kwarg), group in grouped.items():
        by_method = {method: route for route in group for method in route.methods}
        if kwarg is None:
            urls.exact[reverse(name)] = by_method
        else:
            urls.patterns.append((group[0].pattern(), group[0].parse, by_method))
    return urls


async def _refuse_too_large(send: Send) -> None:
    body = json.dumps({"detail": request_too_large_detail()}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def tagged(send: Send, name: bytes, value: bytes) -> Send:
    """`send` with one header added to the answer's start."""

    async def send_tagged(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (name, value)]}
        await send(message)

    return send_tagged
