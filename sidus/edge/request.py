"""The edge's one request model: the request as Django will see it, read in one pass.

Each rule is Django's own, applied to the ASGI scope before Django builds its HttpRequest:
- headers as `ASGIRequest` puts them in META: repeated ones joined with ",", names with an
  underscore dropped (no smuggling between `x_forwarded_proto` and `x-forwarded-proto`);
- the host as `HttpRequest.get_host()` finds it (USE_X_FORWARDED_HOST, then Host, then the
  server's address) and checks it (ALLOWED_HOSTS, `validate_host`);
- the scheme as `HttpRequest.scheme` decides it (SECURE_PROXY_SSL_HEADER's first value);
- the content type and its charset as `HttpRequest` parses them (`parse_header_parameters`).
The body is read by `read_body`, once, Content-Length or chunked, under the upload limit.
"""
import codecs
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host
from django.utils.http import parse_header_parameters

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

# Media ranges for which DRF's negotiation picks the JSON renderer with its plain content type.
_JSON_RANGES = frozenset({b"application/json", b"application/*", b"*/*"})
_HARMLESS_RANGES = _JSON_RANGES | {b"text/plain"}  # no renderer of ours serves text/plain
# Preconditions Django judges (an edge route answers If-None-Match alone, with its own ETag).
_DJANGOS_CONDITIONS = frozenset({b"if-match", b"if-modified-since", b"if-unmodified-since"})


class EdgeRequest:
    """One request, as Django will see it. Built once per request by the edge, in one pass over
    the headers; plain attributes and cached settings, as it is built for every hit of L1."""

    __slots__ = ("scope", "receive", "headers", "has_body", "body", "secure", "plain")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        raw = scope["headers"]
        headers = dict(raw)  # most requests: no name twice
        if len(headers) != len(raw):
            headers = _joined(raw)
        # A name with an underscore stays in `headers` when no name repeats: it is only ever looked
        # up by its hyphenated name, which it never equals, so it is as absent as Django makes it.
        self.headers = headers
        # A body announced (a length, or chunks) must be read by someone: the edge reads it.
        length = headers.get(b"content-length")
        self.has_body = b"transfer-encoding" in headers or (length is not None and length.strip() not in (b"", b"0"))
        self.body: bytes | None = None  # set once read
        rules = settings_rules()
        # HttpRequest.scheme: SECURE_PROXY_SSL_HEADER's first value if the header is there.
        proxied = None if rules.proxy is None else headers.get(rules.proxy[0])
        self.secure = (scope.get("scheme") == "https" if proxied is None
                       else proxied.split(b",", 1)[0].strip() == rules.proxy[1])
        # No query string, an allowed host, an Accept that Django answers with plain JSON and no
        # precondition of Django's: a request an edge route may answer (else it is Django's alone).
        host = headers.get(b"host")
        if host is None or rules.use_forwarded_host:
            host = self.host
        plain = rules.plain.get((host, headers.get(b"accept", b"")))
        if plain is None:
            plain = rules.plain_for(host, headers.get(b"accept", b""))
        self.plain = plain and not scope["query_string"] and headers.keys().isdisjoint(_DJANGOS_CONDITIONS)

    @property
    def method(self) -> str:
        return self.scope["method"]

    @property
    def host(self) -> bytes:
        """HttpRequest.get_host()'s host, before its check (`plain` says whether it passes)."""
        headers = self.headers
        if settings_rules().use_forwarded_host and b"x-forwarded-host" in headers:
            return headers[b"x-forwarded-host"]
        host = headers.get(b"host")
        if host is not None:
            return host
        server = self.scope.get("server")
        if not server:
            return b"unknown"
        name, port = server[0], str(server[1])
        return (name if port == ("443" if self.secure else "80") else f"{name}:{port}").encode("latin-1")

    def content_type(self) -> tuple[str, dict[str, str]]:
        """The media type and its parameters (a `charset`, say), as HttpRequest reads them."""
        return parse_header_parameters(self.headers.get(b"content-type", b"").decode("latin-1"))

    @property
    def encoding(self) -> str | None:
        """HttpRequest.encoding: the content type's charset if Python knows it, else None."""
        charset = self.content_type()[1].get("charset")
        if charset is None:
            return None
        try:
            codecs.lookup(charset)
        except LookupError:
            return None
        return charset

    @property
    def client(self) -> str:
        client = self.scope.get("client")
        return client[0] if client else ""

    def meta(self) -> dict[str, str]:
        """What django-ratelimit and our client-IP rule read of META."""
        meta = {"REMOTE_ADDR": self.client}
        forwarded = self.headers.get(b"x-forwarded-for")
        if forwarded is not None:
            meta["HTTP_X_FORWARDED_FOR"] = forwarded.decode("latin-1")
        return meta

    def for_django(self) -> tuple[Scope, Receive]:
        """The scope and receive to hand Django. With a body read here, its length is declared, so
        that a chunked body is parsed as the same body with a Content-Length would be (Django reads
        a body without one as empty), and the body is replayed to it."""
        if self.body is None:
            return self.scope, self.receive
        headers = [(n, v) for n, v in self.scope["headers"] if n not in (b"content-length", b"transfer-encoding")]
        headers.append((b"content-length", str(len(self.body)).encode()))
        return {**self.scope, "headers": headers}, replaying(self.body, self.receive)


def _joined(raw: Headers) -> dict[bytes, bytes]:
    """Headers as ASGIRequest puts them in META: underscores dropped, repeated ones joined."""
    headers: dict[bytes, bytes] = {}
    for name, value in raw:
        if b"_" in name:
            continue
        joined = headers.get(name)
        headers[name] = value if joined is None else joined + b"," + value
    return headers


@receiver(setting_changed)
def _read_settings_again(**kwargs: Any) -> None:
    settings_rules.cache_clear()


async def read_body(request: EdgeRequest) -> bytes | None:
    """The whole body, or None if the client left. BodyTooLarge past DATA_UPLOAD_MAX_MEMORY_SIZE: a
    declared length is refused before anything is read, a chunked body as soon as it passes it."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = request.headers.get(b"content-length", b"").strip()
    if length.isdigit() and int(length[:20]) > limit:
        raise BodyTooLarge()
    chunks, size = [], 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodyTooLarge(Exception):
    """A body over DATA_UPLOAD_MAX_MEMORY_SIZE: refused with 413 before Django spools it to disk."""


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives Django the body read here, then the client's later messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class Rules:
    """The settings the request model reads, read once (`settings_rules`), and read again when a
    test overrides one (`setting_changed`): every request reads them, and an attribute is cheaper
    than a lookup."""

    def __init__(self) -> None:
        self.use_forwarded_host: bool = settings.USE_X_FORWARDED_HOST
        header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        # SECURE_PROXY_SSL_HEADER as a lower-case header name and its value: a request with it is https.
        self.proxy: tuple[bytes, bytes] | None = (
            (header[0].removeprefix("HTTP_").replace("_", "-").lower().encode(), header[1].encode("latin-1"))
            if header else None
        )
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]  # as HttpRequest.get_host()
        self.allowed_hosts = tuple(allowed)
        self.plain: dict[tuple[bytes, bytes], bool] = {}  # (host, Accept) -> plain

    def plain_for(self, host: bytes, accept: bytes) -> bool:
        """Computed, then remembered in `plain` (which EdgeRequest reads first)."""
        if len(self.plain) >= 1024:  # a bound, whatever hosts and Accept values clients send
            self.plain.clear()
        plain = self.plain[(host, accept)] = host_allowed(host) and accepts_plain_json(accept)
        return plain


@functools.cache
def settings_rules() -> Rules:
    """The rules of the settings as they are (a function of the settings alone)."""
    return Rules()


def host_allowed(host: bytes) -> bool:
    """Django's own ALLOWED_HOSTS check (`split_domain_port`, `validate_host`)."""
    domain, _ = split_domain_port(host.decode("latin-1"))
    return bool(domain) and validate_host(domain, settings_rules().allowed_hosts)


@functools.lru_cache(maxsize=256)
def accepts_plain_json(accept: bytes) -> bool:
    """True if Django would answer this Accept header with plain JSON bytes.

    Anything with parameters (`; indent=4`, `; q=0.9` changes DRF's output) or that could pick
    the browsable API (text/html, text/*) goes to Django.
    """
    if not accept.strip():
        return True
    ranges = {part.strip() for part in accept.lower().split(b",")}
    return all(b";" not in r for r in ranges) and ranges <= _HARMLESS_RANGES and bool(ranges & _JSON_RANGES)
