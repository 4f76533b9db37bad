"""Changing a profile: the API's PATCH, the edge's lean PATCH on the event loop, and staff's form."""
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from users import cache, events
from users.accounts.errors import raise_for_integrity_error
from users.accounts.sessions import sessions_end
from users.mail.outbox import email_queue
from users.models import OutboxEmail, Session, User
from users.profile import queries
from users.runtime import current

# The address is not among them: it changes with the password and the new address's consent
# (`email_change_request`), never with a token alone.
UPDATABLE_FIELDS = frozenset({"username", "first_name", "last_name", "bio"})
# What no other row, no email and no constraint depends on: `profile_update_async` writes these.
TEXT_FIELDS = frozenset({"first_name", "last_name", "bio"})


def user_update(
    *, user: User, data: dict[str, Any], precondition: Callable[[User], None] | None = None
) -> User:
    """Write only the changed columns, so a concurrent soft delete is never undone.

    A new email address is unverified: a link goes to it, and a notice to the old one.

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
            _write(user, data)
    except IntegrityError as exc:
        raise_for_integrity_error(exc)
    return user


def _write(user: User, data: dict[str, Any]) -> None:
    """Set and save `data`'s columns alone. A new address is unverified (unless `data` says
    otherwise): a link goes to it, and a notice to the old one."""
    old_email = user.email
    for field, value in data.items():
        setattr(user, field, value)
    fields = [*data, "updated_at"]
    if "email" in data and user.email != old_email:
        if "email_verified" not in data:
            user.email_verified = False
            fields.append("email_verified")
        if not user.email_verified:
            email_queue(user=user, kind=OutboxEmail.Kind.VERIFY_EMAIL)
        email_queue(user=user, kind=OutboxEmail.Kind.EMAIL_CHANGED, to=old_email)
    user.save(update_fields=fields)


def user_change_by_staff(*, user_id: int, data: dict[str, Any]) -> User:
    """What staff changed in the admin's form, as staff's: the row locked and only `data`'s
    columns written (a concurrent soft delete is not undone), each event "by staff" in the
    user's log, a new address handled as `user_update` handles it, and a user made inactive
    loses every session, as a soft delete ends them."""
    try:
        with transaction.atomic(), events.by_staff():
            user = User.objects.select_for_update().get(pk=user_id)
            if data:
                _write(user, data)
            if "is_active" in data and not user.is_active:
                sessions_end(user=user, reason=Session.EndReason.STAFF)
    except IntegrityError as exc:
        raise_for_integrity_error(exc)
    return user


async def profile_update_async(*, user: User, data: dict[str, str], secure: bool = False) -> User | None:
    """`user_update` of the text fields alone, on the event loop: the edge's lean PATCH.

    One transaction, only while the row is alive, active and still has the password and session
    epoch `user` was read with, which the caller checked the token against: a password change or
    a soft delete (and restore) committed since wins, and the answer is None (the caller lets
    Django answer). It records its event as `User.save()` does (the same SQL), and fires no signal,
    so the change is invalidated here, and the new public answer for the request's scheme
    (`secure`) is kept in L2 at once: every worker's next read of the profile is a Redis hit.
    """
    if not data or not set(data) <= TEXT_FIELDS:
        raise ValueError(f"not a text field update: {sorted(data)}")
    fields = tuple(data)
    generation = await cache.read_generation(user.pk)  # before the write: see invalidate_users_async
    where = ("password", "session_epoch")
    update = queries.update_where(fields, where=where, returning=queries.PRIVATE_ROW)
    runtime = current()
    async with runtime.db.connection() as connection, connection.transaction():
        before = await (await connection.execute(
            events.locked_state_sql(fields, where, may_log_in=True), [user.pk, user.password, user.session_epoch]
        )).fetchone()
        if before is None:
            return None
        params = [*data.values(), timezone.now(), user.pk, user.password, user.session_epoch]
        row = await (await connection.execute(update, params)).fetchone()
        updated = queries.user_from_row(queries.PRIVATE_ROW, row)
        for type, changed in events.changes(dict(zip(fields, before)), updated, fields):
            await connection.execute(events.RECORD, events.record_params(updated, type, changed))
    fresh = {user.pk: (runtime.loader.render(updated, secure), generation)}
    await cache.invalidate_users_async([user.pk], fresh=fresh)
    return updated
