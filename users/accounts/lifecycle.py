"""Leaving and coming back: a soft delete (the user's, or staff's), a restore (staff's), and securing
an account from a login alert's or a revert link."""
import contextlib
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from users import events
from users.accounts.errors import LinkNotValid
from users.accounts.factors import factors_remove
from users.accounts.sessions import sessions_end
from users.mail.outbox import email_queue
from users.models import OutboxEmail, Session, User, UserEvent


def user_soft_delete(*, user: User, ended_by: str | None = None) -> User:
    """Keep the row (and its username and email taken); the user can no longer log in or be seen,
    and every session begun before ends for good: a restore brings back the account, not them."""
    if user.deleted_at is None:
        user.deleted_at = timezone.now()
    user.is_active = False
    user.session_epoch += 1
    staff = ended_by == Session.EndReason.STAFF
    with transaction.atomic(), events.by_staff() if staff else contextlib.nullcontext():
        user.save(update_fields=["deleted_at", "is_active", "session_epoch", "updated_at"])
        sessions_end(user=user, reason=ended_by or Session.EndReason.ACCOUNT_DELETED)
    return user


def user_restore(*, user: User) -> User:
    """Staff's (the admin's action): the user's log says so."""
    user.deleted_at = None
    user.is_active = True
    with transaction.atomic(), events.by_staff():
        user.save(update_fields=["deleted_at", "is_active", "updated_at"])
    return user


def users_soft_delete(*, user_ids: Iterable[int]) -> int:
    """Bulk soft delete (admin action): each user as `user_soft_delete` by staff, in one transaction."""
    with transaction.atomic():
        users = User.objects.select_for_update().filter(pk__in=list(user_ids), deleted_at__isnull=True)
        return sum(1 for user in users if user_soft_delete(user=user, ended_by=Session.EndReason.STAFF))


def users_restore(*, user_ids: Iterable[int]) -> int:
    with transaction.atomic():
        users = User.objects.select_for_update().filter(pk__in=list(user_ids), deleted_at__isnull=False)
        return sum(1 for user in users if user_restore(user=user))


def account_secure(*, user_id: int, session_epoch: int, since: datetime | None) -> User:
    """A login alert's link: every session of the account ends, once (the link names the session
    epoch it was made in), the factors added since the login it was about go, and a reset link
    goes to the account's address."""
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id, session_epoch=session_epoch).first()
        if user is None:
            raise LinkNotValid()
        events.record(user, UserEvent.Type.ACCOUNT_SECURED)
        user_secure(user, since=since)
    return user


def user_secure(user: User, *, since: datetime | None) -> None:
    """Whoever held the account is out: every token and admin login answers 401 at once (the
    session epoch moves on), every session ends, the second factors added `since` the login or
    change being undone go (a thief who had the password may have added one to keep the owner
    out; the older ones stay), and the address gets a reset link."""
    user.session_epoch += 1
    user.save(update_fields=["session_epoch", "updated_at"])
    sessions_end(user=user, reason=Session.EndReason.ACCOUNT_SECURED)
    if since is not None:
        factors_remove(user=user, since=since)
    email_queue(kind=OutboxEmail.Kind.ACCOUNT_SECURED, user=user)
