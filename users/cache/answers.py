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
    # Built at first use, then sent as they are: L1's two ASGI messages of each (304?, HEAD?).
    _messages: dict[tuple[bool, bool], tuple[dict, dict]] = field(default_factory=dict, compare=False)

    @classmethod
    def of(cls, status: int, headers: list[tuple[bytes, bytes]], body: bytes, secure: bool) -> "CachedResponse":
        etag = next((v for n, v in headers if n.lower() == b"etag"), None)
        return cls(status, headers, body, secure, etag)

    def messages(self, tier: bytes, if_none_match: bytes | None, head: bool) -> tuple[dict, dict]:
        """The response start and body to send from `tier` (X-Cache says it): the 200 (no body
        for HEAD), or the 304 to `if_none_match`. L1's are built once each: ASGI servers only
        read them."""
        not_modified = if_none_match is not None and etag_matches(if_none_match, self.etag)
        if tier != b"L1":  # an answer read from L2 or loaded is sent once, then kept in L1
            return self._build(tier, not_modified, head)
        key = (not_modified, head)
        messages = self._messages.get(key)
        if messages is None:
            messages = self._messages[key] = self._build(tier, not_modified, head)
        return messages

    def _build(self, tier: bytes, not_modified: bool, head: bool) -> tuple[dict, dict]:
        if not_modified:
            headers = [(n, b"0" if n.lower() == b"content-length" else v) for n, v in self.headers
                       if n.lower() not in _NOT_MODIFIED_DROPS]
        else:
            headers = list(self.headers)
        headers.append((b"X-Cache", tier))
        start = {"type": "http.response.start", "status": 304 if not_modified else self.status, "headers": headers}
        return start, {"type": "http.response.body", "body": b"" if not_modified or head else self.body}


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
