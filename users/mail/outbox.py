"""The one outbox of every email sidus sends.

A service that changes something writes the email's row in its own transaction (`email_queue`);
the row is published to Celery after the commit and, whatever happened to that publish, sent by
the periodic drain. `email_send` holds the row's lock while the mail goes out, so a task and a
drain racing for it send it once; it renders the links only then, from the user as they are.
Logs name rows by id, never by address (the development console backend, sidus/mail.py, prints whole emails).
"""
import logging
from datetime import datetime, timedelta
from smtplib import SMTPException, SMTPRecipientsRefused, SMTPResponseException
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from users import ratelimits
from users.mail import links
from users.models import EmailChange, OutboxEmail, PendingSignup, User, fold

logger = logging.getLogger(__name__)

Kind = OutboxEmail.Kind

# What anyone can make sidus send to an address that may not be theirs (a signup with it, a reset
# or a verification link for it): RATE_LIMIT_EMAIL_TO_ADDRESS caps each address's share, or these
# would be a way to flood a mailbox in sidus's name.
UNSOLICITED = frozenset({Kind.SIGNUP_EXISTS, Kind.SIGNUP_CONFIRM, Kind.PASSWORD_RESET, Kind.VERIFY_EMAIL,
                         Kind.EMAIL_CHANGE_CONFIRM, Kind.EMAIL_CHANGE_TAKEN})
_NOBODY = ratelimits.Caller(user=None, META={})

SUBJECTS = {
    Kind.WELCOME: "Welcome to sidus",
    Kind.VERIFY_EMAIL: "Confirm your email address",
    Kind.PASSWORD_RESET: "Reset your sidus password",
    Kind.PASSWORD_CHANGED: "Your sidus password was changed",
    Kind.EMAIL_CHANGED: "Your sidus email address was changed",
    Kind.SIGNUP_CONFIRM: "Confirm your address to create your sidus account",
    Kind.SIGNUP_EXISTS: "Someone tried to sign up to sidus with your address",
    Kind.EMAIL_CHANGE_CONFIRM: "Confirm the new address of your sidus account",
    Kind.EMAIL_CHANGE_REQUESTED: "Someone asked to change your sidus email address",
    Kind.EMAIL_CHANGE_TAKEN: "Someone tried to move a sidus account to your address",
    Kind.LOGIN_ALERT: "A new sign-in to your sidus account",
    Kind.ACCOUNT_SECURED: "Your sidus account is secured: choose a new password",
    Kind.FACTOR_ADDED: "A second factor was added to your sidus account",
}


def email_queue(
    *, kind: str, user: User | None = None, signup: PendingSignup | None = None, to: str | None = None,
    context: dict[str, Any] | None = None,
) -> OutboxEmail:
    """Write the row in the caller's transaction; publish it once that commits. An email is for a
    user, or (SIGNUP_CONFIRM) for a pending signup, which has no user yet; `context` says what
    it is about when the user is not enough (a change of address, a login)."""
    recipient = user if user is not None else signup
    email = OutboxEmail.objects.create(user=user, signup=signup, kind=kind, to=to or recipient.email,
                                       context=context or {})
    transaction.on_commit(lambda: email_publish(email_id=email.pk))
    return email


def email_publish(*, email_id: int) -> None:
    """Never raises: with the broker down the drain sends the email later."""
    try:  # by its name: the task's module imports this one
        current_app.send_task("users.tasks.send_email", args=(email_id,), retry=False)
    except Exception as exc:  # kombu raises OperationalError, or OSError, or a timeout
        logger.warning("Broker unavailable, email %s waits in the outbox: %r", email_id, exc)


def _context(email: OutboxEmail) -> dict[str, Any] | None:
    """What the templates need, or None when the email is no longer wanted."""
    if email.kind == Kind.SIGNUP_CONFIRM:
        if email.signup is None:
            return None  # used or expired meanwhile
        return {"to": email.to, "signup_link": links.signup_link(email.signup), "named": False,
                "timeout_hours": max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)}
    user = email.user
    if user.deleted_at is not None or not user.is_active:
        return None
    current = user.email == email.to  # a link goes only to the address it was made for
    # Names are text their writer chose: only an address that proved itself its account's reads them.
    context: dict[str, Any] = {"user": user, "to": email.to, "named": current and user.email_verified}
    if email.kind in (Kind.WELCOME, Kind.VERIFY_EMAIL):
        if current and not user.email_verified:
            context["verify_link"] = links.email_verification_link(user)
        elif email.kind == Kind.VERIFY_EMAIL:
            return None  # verified meanwhile, or the address changed again
    elif email.kind in (Kind.PASSWORD_RESET, Kind.ACCOUNT_SECURED):
        if not current:
            return None
        context["reset_link"] = links.password_reset_link(user)
        context["timeout_hours"] = max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)
    elif email.kind == Kind.EMAIL_CHANGE_CONFIRM:
        change = EmailChange.objects.filter(pk=email.context.get("change")).first()
        if change is None or not change.pending or change.new_email != email.to:
            return None  # a newer request, or cancelled: its link would not work
        context["confirm_link"] = links.email_change_confirm_link(change)
        context["timeout_hours"] = max(1, settings.EMAIL_CHANGE_TIMEOUT // 3600)
    elif email.kind == Kind.EMAIL_CHANGED:
        change = EmailChange.objects.filter(pk=email.context.get("change"), reverted_at__isnull=True).first()
        if change is not None:  # none when staff changed it
            context["revert_link"] = links.email_change_revert_link(change)
            context["revert_days"] = settings.EMAIL_CHANGE_REVERT_DAYS
    elif email.kind == Kind.EMAIL_CHANGE_REQUESTED:
        context["new_email"] = email.context.get("new_email", "")
    elif email.kind == Kind.LOGIN_ALERT:
        context["login"] = {**email.context, "time": datetime.fromisoformat(email.context["time"])}
        context["secure_link"] = links.secure_account_link(user, login_time=context["login"]["time"])
        context["secure_days"] = settings.EMAIL_CHANGE_REVERT_DAYS
    elif email.kind == Kind.FACTOR_ADDED:  # its link removes this factor and any added after it
        context["factor"] = email.context.get("factor", "")
        since = datetime.fromisoformat(email.context["since"])
        context["secure_link"] = links.secure_account_link(user, login_time=since)
        context["secure_days"] = settings.EMAIL_CHANGE_REVERT_DAYS
    return context


def _message(email: OutboxEmail, context: dict[str, Any]) -> EmailMultiAlternatives:
    template = f"users/email/{email.kind}"
    message = EmailMultiAlternatives(
        subject=SUBJECTS[email.kind],
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message


def _is_permanent_smtp_error(exc: Exception) -> bool:
    """A refused address (5xx) will not get better: retrying it forever would block the outbox."""
    if isinstance(exc, SMTPRecipientsRefused):
        return True
    return isinstance(exc, SMTPResponseException) and exc.smtp_code >= 500


def email_send(*, email_id: int) -> bool:
    """Send one pending email; False if sent, skipped or being sent elsewhere already.

    A transient SMTP error rolls back and leaves it pending for the task's retry or the next
    drain; a permanent one marks it failed.
    """
    with transaction.atomic():
        email = (
            OutboxEmail.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("user", "signup")
            .filter(pk=email_id, status=OutboxEmail.Status.PENDING)
            .first()
        )
        if email is None:
            return False
        context = _context(email)
        if context is not None and email.kind in UNSOLICITED and ratelimits.hit(
                _NOBODY, "email_to_address", fold(email.to)) is not None:
            logger.info("Email %s skipped: its address had its share of unsolicited emails", email_id)
            context = None
        if context is None:
            email.status = OutboxEmail.Status.SKIPPED
            email.save(update_fields=["status"])
            return False
        try:
            _message(email, context).send()
        except SMTPException as exc:
            if not _is_permanent_smtp_error(exc):
                raise
            logger.warning("Email %s refused by the mail server (%s)", email_id, type(exc).__name__)
            email.status = OutboxEmail.Status.FAILED
            email.save(update_fields=["status"])
            return False
        email.status, email.sent_at = OutboxEmail.Status.SENT, timezone.now()
        email.save(update_fields=["status", "sent_at"])
        return True


def emails_pending(*, older_than: timedelta, limit: int = 100) -> list[int]:
    """Pending ids old enough that their after-commit publish has had its chance."""
    cutoff = timezone.now() - older_than
    return list(
        OutboxEmail.objects.filter(status=OutboxEmail.Status.PENDING, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
