"""The edge: the one ASGI layer in front of Django, and the only one.

Every HTTP request goes through it once:
1. Its route is looked up in one table (`Route`s, each a URL name of Django's URLconf and the
   methods the edge may answer there). Requests of no route go on to Django untouched, but for
   their body.
2. A body, if the client announced one, is read here, once, under DATA_UPLOAD_MAX_MEMORY_SIZE
   (over it: 413, before anything is spooled to disk), and handed to Django with its length
   declared: a chunked body is read as the same body with a Content-Length is.
3. A routed request becomes one `EdgeRequest` (Django's header, host and scheme rules), and its
   route's handler answers it, or hands it to Django (`Django`), whose answer is then final.

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
from sidus.exception_handler import request_too_large_detail

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


@dataclass(frozen=True)
class Route:
    """Requests the edge may answer: `methods` on the URL named `name`. A URL with a `kwarg`
    (the user's id) passes its value through `parse`, which says None for values no object can
    have (then it is Django's 404)."""

    name: str
    methods: frozenset[str]
    handler: Handler
    kwarg: str | None = None
    parse: Callable[[str], Any] | None = None

    def pattern(self) -> re.Pattern[str]:
        marker = "0edge0"  # any value the URL's converter accepts, to split the reversed path around
        prefix, suffix = reverse(self.name, kwargs={self.kwarg: marker}).split(marker)
        return re.compile(re.escape(prefix) + r"([^/]+)" + re.escape(suffix) + r"\Z")


_KNOWN_PATHS = 10_000  # remembered paths, then forgotten all at once: a bound, whatever clients make up
_NO_ROUTES: dict[str, "Route"] = {}


class Edge:
    def __init__(self, django: Callable, *, routes: Iterable[Route], lifespan: Callable | None = None) -> None:
        self.django = django
        self.to_django = Django(self._django)  # through self.django, which a test may swap
        self.routes = tuple(routes)
        self.lifespan = lifespan
        self._urls: list[_Url] | None = None
        self._paths: dict[str, tuple[dict[str, Route], Any]] = {}  # path -> its routes by method, argument

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan" and self.lifespan is not None:
                return await self.lifespan(scope, receive, send)
            return await self.django(scope, receive, send)
        known = self._paths.get(scope["path"])
        if known is None:
            known = self._paths_of(scope["path"])
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
        await route.handler(request, argument, send, self.to_django)

    async def _django(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.django(scope, receive, send)

    def _paths_of(self, path: str) -> tuple[dict[str, Route], Any]:
        """The routes of a path not seen lately, by method, and its argument: one match per URL."""
        if self._urls is None:
            self._urls = _urls_of(self.routes)
        known: tuple[dict[str, Route], Any] = (_NO_ROUTES, None)
        for exact, pattern, parse, routes in self._urls:
            if exact is not None:
                if path == exact:
                    known = (routes, None)
                    break
                continue
            match = pattern.match(path)
            if match is not None and (value := parse(match.group(1))) is not None:
                known = (routes, value)
                break
        if len(self._paths) >= _KNOWN_PATHS:
            self._paths.clear()
        self._paths[path] = known
        return known


_Url = tuple[str | None, re.Pattern[str] | None, Callable[[str], Any] | None, dict[str, Route]]


def _urls_of(routes: tuple[Route, ...]) -> list[_Url]:
    """The routes grouped by URL, exact paths first: (path, or pattern and parse; routes by method)."""
    grouped: dict[tuple[str, str | None], list[Route]] = {}
    for route in routes:
        grouped.setdefault((route.name, route.kwarg), []).append(route)
    urls: list[_Url] = []
    for (name, kwarg), group in grouped.items():
        by_method = {method: route for route in group for method in route.methods}
        if kwarg is None:
            urls.insert(0, (reverse(name), None, None, by_method))
        else:
            urls.append((None, group[0].pattern(), group[0].parse, by_method))
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
