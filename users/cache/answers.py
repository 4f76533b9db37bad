"""A stored answer: the status, headers and body Django produced for a public profile, as both
tiers keep it (L1 as the object, L2 as bytes), and its conditional (304) form."""
from dataclasses import dataclass, field

# Kept in a 304, as Django's own `get_conditional_response` keeps them (RFC 9110 15.4.5), plus the
# security headers every answer carries; CommonMiddleware then says Content-Length: 0.
_NOT_MODIFIED_DROPS = frozenset({b"content-type", b"allow"})


@dataclass(frozen=True)
class CachedResponse:
    status: int
    headers: list[tuple[bytes, bytes]]  # Django's, which name no tier: X-Cache is added at send time
    body: bytes
    secure: bool
    etag: bytes | None = field(default=None, compare=False)
    # Built at first use, then sent as they are: each tier's headers of the 200 (under the tier)
    # and of the 304 (under (tier, True)).
    _headers: dict[bytes | tuple[bytes, bool], list[tuple[bytes, bytes]]] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, status: int, headers: list[tuple[bytes, bytes]], body: bytes, secure: bool) -> "CachedResponse":
        etag = next((v for n, v in headers if n.lower() == b"etag"), None)
        return cls(status, headers, body, secure, etag)

    def headers_for(self, tier: bytes, *, not_modified: bool = False) -> list[tuple[bytes, bytes]]:
        """The headers to send from `tier` (X-Cache says it), of the 200 or of the 304."""
        key = (tier, True) if not_modified else tier
        kept = self._headers.get(key)
        if kept is None:
            kept = [(n, b"0" if not_modified and n.lower() == b"content-length" else v) for n, v in self.headers
                    if not (not_modified and n.lower() in _NOT_MODIFIED_DROPS)]
            kept.append((b"X-Cache", tier))
            self._headers[key] = kept
        return kept


def encode(answer: CachedResponse) -> bytes:
    """HTTP/1-like bytes for Redis: a status line, the headers, a blank line, the body."""
    head = b"%d %d\r\n" % (answer.status, answer.secure) + b"".join(n + b": " + v + b"\r\n" for n, v in answer.headers)
    return head + b"\r\n" + answer.body


def decode(data: bytes) -> CachedResponse:
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.split(b"\r\n")
    status, secure = status_line.split(b" ")
    headers = [tuple(line.split(b": ", 1)) for line in lines]
    return CachedResponse.of(int(status), headers, body, secure == b"1")  # type: ignore[arg-type]


def etag_matches(if_none_match: bytes, etag: bytes | None) -> bool:
    """If-None-Match's weak comparison (RFC 9110 13.1.2): W/ prefixes do not count; `*` matches."""
    if etag is None:
        return False
    if if_none_match == etag:  # what a client sends back, most of the time: no parsing
        return True
    if if_none_match.strip() == b"*":
        return True
    opaque = etag.removeprefix(b"W/")
    return any(tag.strip().removeprefix(b"W/") == opaque for tag in if_none_match.split(b","))
