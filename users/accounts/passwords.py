"""Passwords and the address's verification: a change, a reset link, a verification link."""
import contextlib
import logging

from celery import current_app
from django.db import transaction

from users import events
from users.accounts.sessions import sessions_end
from users.mail.outbox import email_queue
from users.models import OutboxEmail, Session, User

logger = logging.getLogger(__name__)


def password_change(*, user: User, new_password: str | None,
                    reason: str = Session.EndReason.PASSWORD_CHANGE) -> User:
    """Every token issued before stops working (they carry the old password's fingerprint), and
    every session of the user ends (the caller of a change gets a new one), for `reason`: the
    user's change, a reset link, or staff (the admin's password form, which may also set no
    usable password: `new_password` None). The owner's mailbox hears of it."""
    staff = reason == Session.EndReason.STAFF
    with transaction.atomic(), events.by_staff() if staff else contextlib.nullcontext():
        if new_password is None:
            user.set_unusable_password()
        else:
            user.set_password(new_password)
        user.save(update_fields=["password", "updated_at"])
        sessions_end(user=user, reason=reason)
        email_queue(user=user, kind=OutboxEmail.Kind.PASSWORD_CHANGED)
    return user


def password_reset_ask(*, email: str) -> None:
    """Hand a reset request to a worker, so that answering it costs the same whether or not the
    address belongs to someone. With the broker away it is looked up here instead (the outbox
    drain sends the email later), and the answer is a little slower when it does."""
    try:  # by its name: the task's module imports this one
        current_app.send_task("users.tasks.request_password_reset", args=(email,), retry=False)
    except Exception as exc:  # kombu raises OperationalError, or OSError, or a timeout
        logger.warning("Broker unavailable, password reset looked up in the request: %r", exc)
        password_reset_request(email=email)


def password_reset_request(*, email: str) -> None:
    """Email a reset link if an alive, active user has this address; silent otherwise."""
    user = User.objects.may_log_in().named("email", email).first()
    if user is not None:
        password_reset_send(user=user)


def password_reset_send(*, user: User) -> None:
    """Queue a reset link (API and admin); the link is made when the email goes out."""
    with transaction.atomic():
        email_queue(user=user, kind=OutboxEmail.Kind.PASSWORD_RESET)


def email_verify(*, user: User) -> User:
    with transaction.atomic():
        user.email_verified = True
        user.save(update_fields=["email_verified", "updated_at"])
    return user


def email_verification_resend(*, user: User) -> bool:
    """Queue a new verification link; False (nothing sent) when the address is verified already."""
    if user.email_verified:
        return False
    with transaction.atomic():
        email_queue(user=user, kind=OutboxEmail.Kind.VERIFY_EMAIL)
    return True
