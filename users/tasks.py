"""Celery tasks: thin interfaces that call services and the outbox."""
import logging
from datetime import timedelta
from smtplib import SMTPException

from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings

from users import accounts
from users.auth.keys import keys_prune
from users.mail import outbox

logger = logging.getLogger(__name__)

MAX_RETRIES = 8


class EmailNotSent(Exception):
    """Carries only the error's type: SMTP errors can quote the recipient's address into logs."""


@shared_task(bind=True, max_retries=MAX_RETRIES)
def send_email(self, email_id: int) -> bool:
    try:
        return outbox.email_send(email_id=email_id)
    except (SMTPException, OSError) as exc:
        countdown = get_exponential_backoff_interval(2, self.request.retries, maximum=600, full_jitter=True)
        # After the last retry the row stays pending and the outbox drain tries again later.
        raise self.retry(exc=EmailNotSent(type(exc).__name__), countdown=countdown)


@shared_task
def request_password_reset(email: str) -> None:
    """The lookup behind POST /auth/password/reset/, off the request (users/accounts/)."""
    accounts.password_reset_request(email=email)


@shared_task
def drain_outbox() -> int:
    """Send what the after-commit publish could not (broker down, task lost, retries spent), and
    forget what expired: the pending signups whose links did, the sessions no token of which is
    valid any more, the second factors' challenges and login stages, the signing keys whose every
    token has expired."""
    accounts.signups_expire()
    accounts.sessions_prune()
    accounts.challenges_prune()
    keys_prune()
    sent = 0
    grace = timedelta(seconds=settings.EMAIL_OUTBOX_DRAIN_GRACE)
    for email_id in outbox.emails_pending(older_than=grace):
        try:
            sent += outbox.email_send(email_id=email_id)
        except (SMTPException, OSError) as exc:
            logger.warning("Email %s not sent, stays pending (%s)", email_id, type(exc).__name__)
            break  # the mail server is away: try the rest on the next round
    return sent


def queue_outbox_drain() -> None:
    """Called by the worker's timer (sidus/celery.py). Never raises: the next tick tries again."""
    try:
        drain_outbox.apply_async(retry=False, expires=settings.EMAIL_OUTBOX_DRAIN_INTERVAL)
    except Exception as exc:  # broker away
        logger.warning("Could not queue the outbox drain: %r", exc)
