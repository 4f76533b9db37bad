"""Changing a profile: one write, whoever asks for it.

`ProfileWrite` is the change as statements: the row locked and read, the UPDATE of the changed
columns (and `updated_at`, and the folded username), the events recorded with the same SQL as
`User.save()`'s (`events.RECORD`). The API's PATCH runs it on its caller's connection and
transaction (`user_update`), the edge's lean PATCH on the event loop's (`profile_update_async`):
the same statements in the same order, with no I/O of their own; only the driver differs. Staff's
form (`user_change_by_staff`) may write any field, and saves the model.
"""
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from users import cache, events
from users.accounts.errors import raise_for_integrity_error
from users.accounts.sessions import sessions_end
from users.mail.outbox import email_queue
from users.models import OutboxEmail, Session, User, fold
from users.profile import queries
from users.profile.fields import TEXT_FIELDS, UPDATABLE_FIELDS
from users.runtime import current

Statement = tuple[str, list[Any]]
Steps = Generator[Statement, tuple[Any, ...] | None, User | None]


@dataclass(frozen=True)
class ProfileWrite:
    """A change of `data`'s fields of one user, only while each of `where` still holds its value
    (and, with `may_log_in`, while the user may log in)."""

    user_id: int
    data: dict[str, Any]
    where: tuple[tuple[str, Any], ...] = ()
    may_log_in: bool = False

    def steps(self, precondition: Callable[[User], None] | None = None) -> Steps:
        """The statements, each sent back the row it returned; the updated user (or, with no
        change, the user as read), or None when the row is gone or no longer matches."""
        names = tuple(name for name, _ in self.where)
        values = [value for _, value in self.where]
        fields = events.written_fields(self.data)  # in the events' own order, as save() names them
        # What the events compare, and the whole private row where a precondition or the caller reads it.
        read = fields if precondition is None and self.data else (
            *queries.PRIVATE_ROW, *(name for name in fields if name not in queries.PRIVATE_ROW))
        row = yield events.locked_state_sql(read, names, may_log_in=self.may_log_in), [self.user_id, *values]
        if row is None:
            return None
        before = dict(zip(read, row))
        if precondition is not None:
            precondition(queries.user_from_row(read, row))  # raises to refuse, on the locked row
        if not self.data:
            return queries.user_from_row(read, row)
        columns, params = self._columns()
        update = queries.update_where(columns, names, queries.PRIVATE_ROW, may_log_in=self.may_log_in)
        row = yield update, [*params, timezone.now(), self.user_id, *values]
        if row is None:
            return None
        updated = queries.user_from_row(queries.PRIVATE_ROW, row)
        for type, changed in events.changes(before, updated, fields):
            yield events.RECORD, events.record_params(updated, type, changed)
        return updated

    def _columns(self) -> tuple[tuple[str, ...], list[Any]]:
        data = dict(self.data)
        if "username" in data:
            data["username_folded"] = fold(data["username"])  # what uniqueness compares, as save() keeps it
        return tuple(data), list(data.values())


def user_update(
    *, user: User, data: dict[str, Any], precondition: Callable[[User], None] | None = None
) -> User:
    """`data`'s profile fields of `user` (`UPDATABLE_FIELDS`), in the caller's transaction: only the
    changed columns, so a concurrent soft delete is never undone. The row is locked and read
    first; a `precondition` (If-Match) runs on it, and raises to refuse. NameTaken if a concurrent
    writer took the username. Every cache forgets the user once the change commits."""
    unknown = set(data) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    try:
        with transaction.atomic():
            written = _run(ProfileWrite(user.pk, dict(data)).steps(precondition))
            if data:
                transaction.on_commit(lambda: cache.invalidate_users([user.pk]), robust=True)
    except IntegrityError as exc:
        raise_for_integrity_error(exc)
    if written is None:
        raise User.DoesNotExist()
    return written


def _run(steps: Steps) -> User | None:
    """The steps on Django's connection of this thread (the caller's transaction)."""
    with connection.cursor() as cursor:
        try:
            statement = next(steps)
            while True:
                cursor.execute(*statement)
                statement = steps.send(cursor.fetchone() if cursor.description else None)
        except StopIteration as done:
            return done.value


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

    The same write, in one transaction on the loop's pool, only while the row may log in and still
    has the password and session epoch `user` was read with, which the caller checked the token
    against: a password change or a soft delete (and restore) committed since wins, and the answer
    is None (the caller lets Django answer). The change is invalidated here, and the new public
    answer for the request's scheme (`secure`) is kept in L2 at once: every worker's next read of
    the profile is a Redis hit.
    """
    if not data or not set(data) <= TEXT_FIELDS:
        raise ValueError(f"not a text field update: {sorted(data)}")
    generation = await cache.read_generation(user.pk)  # before the write: see invalidate_users_async
    where = (("password", user.password), ("session_epoch", user.session_epoch))
    write = ProfileWrite(user.pk, dict(data), where=where, may_log_in=True)
    runtime = current()
    async with runtime.db.connection() as conn, conn.transaction():
        steps = write.steps()
        try:
            statement = next(steps)
            while True:
                cursor = await conn.execute(*statement)
                statement = steps.send(await cursor.fetchone() if cursor.description else None)
        except StopIteration as done:
            updated = done.value
    if updated is None:
        return None
    fresh = {user.pk: (runtime.loader.render(updated, secure), generation)}
    await cache.invalidate_users_async([user.pk], fresh=fresh)
    return updated
