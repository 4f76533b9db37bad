"""Django's request rules, for the ASGI layers that answer before it (users/cache/asgi.py,
users/profile_update.py): a layer answers only what Django would accept and answer in plain
JSON, so that no answer of a layer can differ from Django's. Read from the settings once.
The layers learn the headers of their answers from Django's own: `kept_answer`, `filled`.
"""
import functools
from collections.abc import Callable

from django.conf import settings
from django.http.request import split_domain_port, validate_host

# Media ranges for which DRF's negotiation picks the JSON renderer with its plain content type.
_JSON_RANGES = frozenset({b"application/json", b"application/*", b"*/*"})
_HARMLESS_RANGES = _JSON_RANGES | {b"text/plain"}  # no renderer of ours serves text/plain


@functools.lru_cache(maxsize=1)
def _allowed_hosts() -> tuple[str, ...]:
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]  # as HttpRequest.get_host()
    return tuple(allowed)


@functools.lru_cache(maxsize=128)
def host_allowed(host: bytes) -> bool:
    """Django's own ALLOWED_HOSTS check, remembered for the few hosts a deployment sees."""
    domain, _ = split_domain_port(host.decode("latin-1"))
    return bool(domain) and validate_host(domain, _allowed_hosts())


@functools.lru_cache(maxsize=1)
def proxy_ssl_header() -> tuple[bytes, bytes] | None:
    """SECURE_PROXY_SSL_HEADER as an ASGI header name and value: a request with it is https."""
    header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not header:
        return None
    return header[0].removeprefix("HTTP_").replace("_", "-").lower().encode(), header[1].encode("latin-1")


def is_secure(scope: dict, proxy_value: bytes | None) -> bool:
    """HttpRequest.scheme's rule: the first value of the proxy's header when one is configured and
    sent (`proxy_value`: its first occurrence), else the connection's own scheme."""
    proxy = proxy_ssl_header()
    if proxy is not None and proxy_value is not None:
        return proxy_value.split(b",", 1)[0].strip() == proxy[1]
    return scope.get("scheme") == "https"


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


async def kept_answer(app: Callable, scope: dict, receive: Callable) -> tuple[dict | None, list[dict]]:
    """The app's whole answer, kept instead of sent: its start message (None if it sent none
    first) and every message, for the layer to learn from and then pass on."""
    messages: list[dict] = []

    async def keep(message: dict) -> None:
        messages.append(message)

    await app(scope, receive, keep)
    start = messages[0] if messages and messages[0]["type"] == "http.response.start" else None
    return start, messages


def filled(template: list[tuple[bytes, bytes]], values: dict[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """Django's headers from another answer, in its order, with the per-answer ones (lower-case
    names in `values`: Content-Length, ETag, ...) taking this answer's values."""
    return [(name, values.get(name.lower(), value)) for name, value in template]
