"""A real SMTP server for the tests (aiosmtpd), which can refuse the first messages it gets."""
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller

from tests.servers import free_port


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


class SMTPServer:
    def __init__(self, refuse: int = 0, unknown: tuple[str, ...] = ()) -> None:
        self.inbox = Inbox(refuse, unknown)
        self.port = free_port()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> "SMTPServer":
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
