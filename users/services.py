"""The rules of changing a user. Views, the admin and tasks call these; nothing else writes users."""
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from smtplib import SMTPException, SMTPRecipientsRefused, SMTPResponseException
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from users import cache
from users.models import User, WelcomeEmail

logger = logging.getLogger(__name__)

# Database constraints behind the serializers' checks: a concurrent writer can still trip them.
_CONSTRAINT_FIELDS = {
    "user_username_ci_unique": "username",
    "user_username_key": "username",
    "user_email_ci_unique": "email",
}

UPDATABLE_FIELDS = frozenset({"username", "email", "first_name", "last_name", "bio"})


def _raise_for_integrity_error(exc: IntegrityError) -> None:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    field = _CONSTRAINT_FIELDS.get(constraint or "")
    if field is None:
        raise exc
    raise ValidationError({field: [f"A user with that {field} already exists."]}, code="unique") from exc


def user_create(
    *,
    username: str,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    bio: str = "",
) -> User:
    user = User(username=username, email=email, first_name=first_name, last_name=last_name, bio=bio)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
            welcome = WelcomeEmail.objects.create(user=user)
            transaction.on_commit(lambda: welcome_email_queue(welcome_id=welcome.pk))
    except IntegrityError as exc:
        _raise_for_integrity_error(exc)
    return user


def user_update(
    *, user: User, data: dict[str, Any], precondition: Callable[[User], None] | None = None
) -> User:
    """Write only the changed columns, so a concurrent soft delete is never undone.

    With a `precondition` (If-Match), the row is locked and re-read first and the check runs on
    it: nobody can write between the check and this write. It raises to refuse.
    """
    unknown = set(data) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    try:
        with transaction.atomic():
            if precondition is not None:
                user = User.objects.select_for_update().get(pk=user.pk)
                precondition(user)
            if not data:
                return user
            for field, value in data.items():
                setattr(user, field, value)
            user.save(update_fields=[*data, "updated_at"])
    except IntegrityError as exc:
        _raise_for_integrity_error(exc)
    return user


def user_soft_delete(*, user: User) -> User:
    """Keep the row (and its username and email taken); the user can no longer log in or be seen."""
    if user.deleted_at is None:
        user.deleted_at = timezone.now()
    user.is_active = False
    with transaction.atomic():
        user.save(update_fields=["deleted_at", "is_active", "updated_at"])
    return user


def user_restore(*, user: User) -> User:
    user.deleted_at = None
    user.is_active = True
    with transaction.atomic():
        user.save(update_fields=["deleted_at", "is_active", "updated_at"])
    return user


def users_soft_delete(*, user_ids: Iterable[int]) -> int:
    """Bulk soft delete (admin action)."""
    return _users_bulk_update(user_ids, deleted=False, deleted_at=timezone.now(), is_active=False)


def users_restore(*, user_ids: Iterable[int]) -> int:
    return _users_bulk_update(user_ids, deleted=True, deleted_at=None, is_active=True)


def _users_bulk_update(user_ids: Iterable[int], *, deleted: bool, **values: Any) -> int:
    """Update the users now (not) deleted. `update()` fires no signal: invalidate explicitly."""
    ids = list(user_ids)
    with transaction.atomic():
        count = User.objects.filter(pk__in=ids, deleted_at__isnull=not deleted).update(
            updated_at=timezone.now(), **values
        )
        transaction.on_commit(lambda: cache.invalidate_users(ids))
    return count


# --- Welcome email ---------------------------------------------------------------------------


def welcome_email_queue(*, welcome_id: int) -> None:
    """Publish after commit. Never raises: with the broker down the outbox drain sends it later."""
    from users.tasks import send_welcome_email

    try:
        send_welcome_email.apply_async((welcome_id,), retry=False)
    except Exception as exc:  # kombu raises OperationalError, or OSError, or a timeout
        logger.warning("Broker unavailable, welcome email %s waits in the outbox: %r", welcome_id, exc)


def _is_permanent_smtp_error(exc: Exception) -> bool:
    """A refused address (5xx) will not get better: retrying it forever would block the outbox."""
    if isinstance(exc, SMTPRecipientsRefused):
        return True
    return isinstance(exc, SMTPResponseException) and exc.smtp_code >= 500


def welcome_email_send(*, welcome_id: int) -> bool:
    """Send one pending welcome email; False if sent, skipped or being sent elsewhere already.

    The row stays locked while the mail goes out, so a drain and a task racing for it send once.
    A transient SMTP error rolls back and leaves it pending for the task's retry or the next
    drain; a permanent one marks it failed. Logs never name the address.
    """
    with transaction.atomic():
        welcome = (
            WelcomeEmail.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("user")
            .filter(pk=welcome_id, status=WelcomeEmail.Status.PENDING)
            .first()
        )
        if welcome is None:
            return False
        user = welcome.user
        if user.deleted_at is not None or not user.is_active:
            welcome.status = WelcomeEmail.Status.SKIPPED
            welcome.save(update_fields=["status"])
            return False
        context = {"user": user}
        message = EmailMultiAlternatives(
            subject="Welcome to sidus",
            body=render_to_string("users/welcome_email.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[user.email],
        )
        message.attach_alternative(render_to_string("users/welcome_email.html", context), "text/html")
        try:
            message.send()
        except SMTPException as exc:
            if not _is_permanent_smtp_error(exc):
                raise
            logger.warning("Welcome email %s refused by the mail server (%s)", welcome_id, type(exc).__name__)
            welcome.status = WelcomeEmail.Status.FAILED
            welcome.save(update_fields=["status"])
            return False
        welcome.status, welcome.sent_at = WelcomeEmail.Status.SENT, timezone.now()
        welcome.save(update_fields=["status", "sent_at"])
        return True


def welcome_emails_pending(*, older_than: timedelta, limit: int = 100) -> list[int]:
    """Pending ids old enough that their after-commit publish has had its chance."""
    cutoff = timezone.now() - older_than
    return list(
        WelcomeEmail.objects.filter(status=WelcomeEmail.Status.PENDING, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
