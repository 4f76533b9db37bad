"""Celery tasks: thin interfaces that call services."""
import logging
from datetime import timedelta
from smtplib import SMTPException

from celery import shared_task
from django.conf import settings

from users import services

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(SMTPException, OSError),
    retry_backoff=2,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def send_welcome_email(welcome_id: int) -> bool:
    return services.welcome_email_send(welcome_id=welcome_id)


@shared_task
def drain_welcome_emails() -> int:
    """Send what the after-commit publish could not (broker down, task lost, retries spent)."""
    sent = 0
    grace = timedelta(seconds=settings.WELCOME_EMAIL_DRAIN_GRACE)
    for welcome_id in services.welcome_emails_pending(older_than=grace):
        try:
            sent += services.welcome_email_send(welcome_id=welcome_id)
        except (SMTPException, OSError) as exc:
            logger.warning("Welcome email %s not sent, stays pending: %r", welcome_id, exc)
            break  # the mail server is away: try the rest on the next round
    return sent


def queue_welcome_email_drain() -> None:
    """Called by the worker's timer (sidus/celery.py). Never raises: the next tick tries again."""
    try:
        drain_welcome_emails.apply_async(retry=False, expires=settings.WELCOME_EMAIL_DRAIN_INTERVAL)
    except Exception as exc:  # broker away
        logger.warning("Could not queue the welcome email drain: %r", exc)
