"""A real SMTP server for the tests (aiosmtpd), which can refuse the first messages it gets, and
how a test reads what it received as a user would: by subject, and the links in it."""
import asyncio
import re
import socket
from collections.abc import Awaitable
from email import message_from_bytes
from email.message import Message
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from tests.servers import wait_until

# The FRONTEND_URL of the `inbox` fixture (tests/conftest.py): the links in emails point there.
FRONTEND_URL = "https://app.example.org"


class Inbox:
    """aiosmtpd handler: keeps accepted messages; 451 to the first `refuse` ones, 550 to `unknown` addresses."""

    def __init__(self, refuse: int = 0, unknown: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.unknown = set(unknown)
        self.messages: list[Message] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.unknown:
            return "550 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            return "451 Try again later"
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


class _BoundController(Controller):
    """aiosmtpd's Controller serving a socket bound beforehand: its port is never picked and released."""

    def __init__(self, handler: Inbox, sock: socket.socket) -> None:
        self._sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1])

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


class SMTPServer:
    def __init__(self, refuse: int = 0, unknown: tuple[str, ...] = ()) -> None:
        self.inbox = Inbox(refuse, unknown)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.controller = _BoundController(self.inbox, sock)

    def __enter__(self) -> "SMTPServer":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def received(inbox, address: str, subject: str, count: int = 1) -> list[Message]:
    """The messages with `subject` sent to `address`, once `count` of them arrived."""
    def matching() -> list[Message]:
        return [m for m in inbox.to(address) if m["Subject"] == subject]

    wait_until(lambda: len(matching()) >= count, timeout=15)
    return matching()


def text_and_html(message: Message) -> tuple[str, str]:
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in message.walk()
             if not part.is_multipart()}
    return parts["text/plain"], parts["text/html"]


def link_url(message: Message, page: str, frontend_url: str = FRONTEND_URL) -> str:
    """The `page` link in the text part, which the HTML part repeats: what a person clicks."""
    text, html = text_and_html(message)
    url = re.search(rf"{re.escape(frontend_url)}/{page}\?\S+", text).group(0)
    assert url.replace("&", "&amp;") in html
    return url


def link_in(message: Message, page: str) -> dict[str, str]:
    """The query of the `page` link: its uid and token, as the API takes them."""
    return {key: values[0] for key, values in parse_qs(urlsplit(link_url(message, page)).query).items()}
