"""Changing a profile: one write, whoever asks for it.

`ProfileWrite` is the change as statements: the row read with its version (PostgreSQL's `xmin`),
checked by the caller, then one statement that writes the changed columns (and `updated_at`, and
the folded names), numbers the events and records them with their webhook deliveries
(`events.recording`: the same events as `User.save()`'s), only while the row is still the version
read. A write that came in between fails that guard, and the change is tried once more on the row
read FOR UPDATE. The API's PATCH runs it on its caller's connection and transaction
(`user_update`), the edge's lean PATCH on the event loop's in autocommit (`profile_update_async`,
two statements in all, the read shared with the other reads by id of its turn of the loop, and
Django tries again when another write came in between): the same statements in the same order,
with no I/O of their own; only the driver differs. Staff's form
(`user_change_by_staff`) may write any field, and saves the model.
"""
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from users import cache, events
from users.accounts.errors import raise_for_integrity_error
from users.accounts.sessions import sessions_end
from users.mail.outbox import email_queue
from users.models import FOLDED_FIELDS, OutboxEmail, Session, User, fold
from users.profile import queries
from users.profile.fields import TEXT_FIELDS, UPDATABLE_FIELDS
from users.runtime import current

Statement = tuple[str, list[Any]]
Steps = Generator[Statement, tuple[Any, ...] | None, User | None]


@dataclass(frozen=True)
class ProfileWrite:
    """A change of `data`'s fields of one user, written only if the row read passes the caller's
    `precondition` and is still that row (and, with `may_log_in`, while the user may log in);
    `checks` are the columns the precondition reads besides the private profile."""

    user_id: int
    data: dict[str, Any]
    checks: tuple[str, ...] = ()
    may_log_in: bool = False

    def steps(self, precondition: Callable[[User], None] | None = None, *, again_locked: bool = True) -> Steps:
        """The statements, each sent back the row it returned; the updated user (or, with no
        change, the user as read), or None when the row is gone, no longer matches, or (without
        `again_locked`) changed between the read and the write."""
        read = (*queries.PRIVATE_ROW, *(name for name in self.checks if name not in queries.PRIVATE_ROW))
        for locked in (False, True) if again_locked else (False,):
            row = yield queries.select_versioned(read, locked=locked), [[self.user_id]]
            if row is None:
                return None
            *values, version = row
            before = queries.user_from_row(read, values)
            if precondition is not None:
                precondition(before)  # raises to refuse
            if not self.data:
                return before
            # The user as the write leaves it is another instance: the precondition's stays as read.
            row = yield self._write(queries.user_from_row(read, values), dict(zip(read, values)), version)
            if row is not None:
                return queries.user_from_row(queries.PRIVATE_ROW, row[2:])  # after user_id and sequence
        return None

    def _write(self, user: User, before: dict[str, Any], version: str) -> Statement:
        """The one statement of the change of `user` (as read: `before`, `version`; set to what the
        write leaves) and its events."""
        data = dict(self.data)
        for name, folded in FOLDED_FIELDS.items():
            if name in data:
                data[folded] = fold(data[name])  # what uniqueness compares, as save() keeps it
        now = timezone.now()
        for name, value in (*data.items(), ("updated_at", now)):
            setattr(user, name, value)  # the row as the write leaves it: what the events say
        found = events.changes(before, user, events.written_fields(self.data))
        update = queries.update_versioned(tuple(data), queries.PRIVATE_ROW, events=len(found),
                                          may_log_in=self.may_log_in)
        params = [*data.values(), now, self.user_id, version]
        if not found:
            return update, params
        statement = events.recording(update, len(found), ("user_id", "sequence", *queries.PRIVATE_ROW))
        for type, changed in found:
            params += events.event_params(user, type, changed)
        return statement, params


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


async def profile_update_async(
    *, user_id: int, data: dict[str, str], admit: Callable[[User], Awaitable[bool]], checks: tuple[str, ...] = (),
    secure: bool = False,
) -> User | None:
    """`user_update` of the text fields alone, on the event loop: the edge's lean PATCH.

    The same steps on the loop's pool in autocommit: the row read (with `checks`' columns), then
    `admit` decides on it (the token's checks and the rate limit: False refuses), then the one
    statement of the write and its events, only while the row may log in and is still the version
    `admit` saw. None when the row is gone, refused, or changed in between: the caller lets Django
    answer. The change is invalidated here, and the new public answer for the request's scheme
    (`secure`) is kept in L2 at once: every worker's next read of the profile is a Redis hit.
    """
    if not data or not set(data) <= TEXT_FIELDS:
        raise ValueError(f"not a text field update: {sorted(data)}")
    runtime = current()
    read: list[User] = []  # the row as read, which `admit` judges
    updated: User | None = None
    steps = ProfileWrite(user_id, dict(data), checks=checks, may_log_in=True).steps(read.append, again_locked=False)
    try:
        query, _ = next(steps)  # the row read by its id: with the other reads of this turn of the loop
        statement = steps.send(await runtime.loader.row(query, user_id, id_at=queries.PRIVATE_ROW.index("id")))
        if not await admit(read[0]):
            return None
        generation = await cache.read_generation(user_id)  # before the write: see invalidate_users_async
        async with runtime.db.connection() as conn:
            row = await (await conn.execute(*statement)).fetchone()
        steps.send(row)
    except StopIteration as done:
        updated = done.value
    if updated is None:
        return None
    fresh = {user_id: (runtime.loader.render(updated, secure), generation)}
    await cache.invalidate_users_async([user_id], fresh=fresh)
    return updated
