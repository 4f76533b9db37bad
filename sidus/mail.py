"""Email in local development: each message logged once, as a person reads it; never in production."""
import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger(__name__)


class ReadableConsoleBackend(BaseEmailBackend):
    """The default backend (`EMAIL_URL=consolemail://`): the subject, the recipients and the text
    part with its links, at INFO in the worker's log, instead of Django's raw MIME with both parts.
    Set EMAIL_URL to an SMTP server (compose's Mailpit, say) to see the HTML part."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            logger.info("Email to %s: %s\n\n%s\n", ", ".join(message.to), message.subject, message.body.strip())
        return len(email_messages)


# Backends that write whole emails, links included, where logs go.
_TO_THE_LOG = ("sidus.mail.ReadableConsoleBackend", "django.core.mail.backends.console.EmailBackend")


@checks.register(checks.Tags.security, deploy=True)
def check_email_backend(**kwargs: Any) -> list[checks.CheckMessage]:
    """`check --deploy` fails while emails go to the log outside DEBUG: their reset, verification
    and revert links are secrets, and the addresses personal data."""
    if settings.DEBUG or settings.EMAIL_BACKEND not in _TO_THE_LOG:
        return []
    return [checks.Error(
        "Emails are written to the log (EMAIL_URL=consolemail://, the development default), links and addresses "
        "included.", hint="Set EMAIL_URL to your mail server, e.g. smtp+tls://user:password@smtp.example.com:587.",
        obj="EMAIL_URL", id="sidus.E001",
    )]
