"""Celery tasks: thin interfaces that call services."""
import logging
from datetime import timedelta
from smtplib import SMTPException

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from users import services

logger = logging.getLogger(__name__)

MAX_RETRIES = 8


class WelcomeEmailNotSent(Exception):
    """Carries only the error's type: SMTP errors can quote the recipient's address into logs."""


@shared_task(bind=True, max_retries=MAX_RETRIES)
def send_welcome_email(self, welcome_id: int) -> bool:
    try:
        return services.welcome_email_send(welcome_id=welcome_id)
    except (SMTPException, OSError) as exc:
        countdown = get_exponential_backoff_interval(2, self.request.retries, maximum=600, full_jitter=True)
        # After the last retry the row stays pending and the outbox drain tries again later.
        raise self.retry(exc=WelcomeEmailNotSent(type(exc).__name__), countdown=countdown)


@shared_task
def drain_welcome_emails() -> int:
    """Send what the after-commit publish could not (broker down, task lost, retries spent)."""
    sent = 0
    grace = timedelta(seconds=settings.WELCOME_EMAIL_DRAIN_GRACE)
    for welcome_id in services.welcome_emails_pending(older_than=grace):
        try:
            sent += services.welcome_email_send(welcome_id=welcome_id)
        except (SMTPException, OSError) as exc:
            logger.warning("Welcome email %s not sent, stays pending (%s)", welcome_id, type(exc).__name__)
            break  # the mail server is away: try the rest on the next round
    return sent


def queue_welcome_email_drain() -> None:
    """Called by the worker's timer (sidus/celery.py). Never raises: the next tick tries again."""
    try:
        drain_welcome_emails.apply_async(retry=False, expires=settings.WELCOME_EMAIL_DRAIN_INTERVAL)
    except Exception as exc:  # broker away
        logger.warning("Could not queue the welcome email drain: %r", exc)
