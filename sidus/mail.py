"""Email in local development: each message logged once, as a person reads it."""
import logging
from collections.abc import Sequence

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
