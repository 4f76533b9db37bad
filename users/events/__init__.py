"""User events: what changed, recorded in the change's own transaction (the transactional outbox).

`User.save()` writes in a transaction in which the pre_save receiver below locks the row and reads
what it was (`locked_state`) and the post_save receiver records the events (`record_change`), so
every way of saving a user emits the events of its change; a profile's write (users/accounts/profile.py),
which writes without the ORM, finds them with the same rule (`changes`) and records them in its own
UPDATE (`recording`, as `RECORD` does). Each event is numbered by the user's row
(`User.event_sequence`) under its lock, so a user's events are numbered in the order their
transactions commit. The relay (users/events/relay.py) publishes them.
"""
import contextlib
import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone
from psycopg import sql

from users.models import User, UserEvent, WebhookDelivery, WebhookEndpoint
from users.profile import queries
from users.profile.serializers import UserPublicSerializer, representation

Type = UserEvent.Type

# The fields whose change is an event: the public profile's writable ones (`user.updated`), and
# the email, its verification, the password and the soft delete.
PROFILE_FIELDS = tuple(name for name in UserPublicSerializer.Meta.fields if name in
                       ("username", "first_name", "last_name", "bio"))
EVENT_FIELDS = (*PROFILE_FIELDS, "email", "email_verified", "password", "deleted_at")
# Events whose `data` carries the address: the ones about it.
_WITH_EMAIL = frozenset({Type.REGISTERED, Type.EMAIL_CHANGED, Type.EMAIL_VERIFIED})


# What a user's log says of a staff action: never who.
BY_STAFF = {"by": "staff"}
_acting: ContextVar[Mapping[str, Any]] = ContextVar("sidus_events_acting", default={})
# Who causes what is recorded now (the CloudEvent's `actor`): sidus itself unless a request or staff.
_actor: ContextVar[str] = ContextVar("sidus_events_actor", default=UserEvent.Actor.SYSTEM)


@contextlib.contextmanager
def acting(actor: str) -> Iterator[None]:
    """Every event recorded inside is `actor`'s (UserEvent.Actor): a client's request is the user's."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


@contextlib.contextmanager
def by_staff() -> Iterator[None]:
    """Every event recorded inside (by `save()` too) is staff's, in its user's security log and its `actor`."""
    token = _acting.set(BY_STAFF)
    try:
        with acting(UserEvent.Actor.STAFF):
            yield
    finally:
        _acting.reset(token)


def written_fields(update_fields: Iterable[str] | None) -> tuple[str, ...]:
    """The event fields a save writes: all of them, or those of its `update_fields`."""
    if update_fields is None:
        return EVENT_FIELDS
    names = set(update_fields)
    return tuple(name for name in EVENT_FIELDS if name in names)


@functools.cache
def locked_state_sql(fields: tuple[str, ...]) -> str:
    """SELECT `fields` of one user FOR UPDATE; the id is the one parameter."""
    query = queries.one_parameter(User.objects.filter(pk=1).values(*fields))
    return f"{query} FOR UPDATE"  # select_for_update() compiles only inside a transaction


def locked_state(user_id: int, fields: tuple[str, ...], *, using: str = DEFAULT_DB_ALIAS) -> dict[str, Any] | None:
    """The user's `fields` as committed, its row locked until the transaction ends (None: no row)."""
    with connections[using].cursor() as cursor:
        cursor.execute(locked_state_sql(fields), [user_id])
        row = cursor.fetchone()
    return dict(zip(fields, row)) if row is not None else None


def changes(before: Mapping[str, Any] | None, user: User, fields: Iterable[str]) -> list[tuple[str, list[str]]]:
    """The events of a change from `before` (None: the user is new) to `user`, in `fields`:
    (type, changed profile fields), in a fixed order."""
    if before is None:
        return [(Type.REGISTERED, [])]
    changed = [name for name in fields if before[name] != getattr(user, name)]
    found = []
    if "password" in changed:
        found.append((Type.PASSWORD_CHANGED, []))
    if "email" in changed:
        found.append((Type.EMAIL_CHANGED, []))
    elif "email_verified" in changed and user.email_verified:
        found.append((Type.EMAIL_VERIFIED, []))
    profile = [name for name in changed if name in PROFILE_FIELDS]
    if profile:
        found.append((Type.UPDATED, profile))
    if "deleted_at" in changed:
        if before["deleted_at"] is None:
            found.append((Type.DELETED, []))
        elif user.deleted_at is None:
            found.append((Type.RESTORED, []))
    return found


def data(user: User, type: str, changed: list[str]) -> dict[str, Any]:
    """An event's `data`: the public profile, the changed fields' names, and the address only
    when the event is about it. Never the password hash or a token."""
    payload: dict[str, Any] = {"user": dict(representation(UserPublicSerializer, user))}
    if type == Type.UPDATED:
        payload["changed"] = changed
    if type in _WITH_EMAIL:
        payload["email"] = user.email
    return payload


@functools.cache
def recording(numbered: str, count: int, result: tuple[str, ...]) -> str:
    """One statement that records `count` events: `numbered`, a write of the user's row RETURNING
    its `user_id` and its `sequence` once it added `count` (under the row's lock, so a user's
    events are numbered in commit order), then the events numbered up to that (each with
    `event_params`), then one delivery for each enabled webhook endpoint that wants its type, and
    `result`'s columns of `numbered`: no round trip between them."""
    event, endpoint, delivery = UserEvent._meta, WebhookEndpoint._meta, WebhookDelivery._meta
    columns = ("id", "user_id", "sequence", "type", "time", "data", "context", "actor", "attempts", "last_error")
    rows = sql.SQL(", ").join(
        sql.SQL("(%s::uuid, {}, %s, %s::timestamptz, %s::jsonb, %s::jsonb, %s)").format(sql.Literal(number))
        for number in range(1, count + 1))
    return sql.SQL(
        "WITH numbered AS ({numbered}), "
        "recorded AS (INSERT INTO {event} ({columns}) "
        "SELECT e.id, n.user_id, n.sequence - {count} + e.n, e.type, e.time, e.data, e.context, e.actor, 0, '' "
        "FROM numbered n CROSS JOIN (VALUES {rows}) AS e (id, n, type, time, data, context, actor) "
        "RETURNING {event_id}, {event_user}, {event_seq}, {event_type}), "
        "delivered AS (INSERT INTO {delivery} ({d_endpoint}, {d_event}, {d_user}, {d_seq}) "
        "SELECT w.{w_id}, r.{event_id}, r.{event_user}, r.{event_seq} FROM recorded r JOIN {endpoint} w "
        "ON w.{w_enabled} AND {wanted}) "
        "SELECT {result} FROM numbered"
    ).format(
        numbered=sql.SQL(numbered), count=sql.Literal(count), rows=rows, event=sql.Identifier(event.db_table),
        columns=sql.SQL(", ").join(
            sql.Identifier(event.get_field(name.removesuffix("_id")).column) for name in columns
        ),
        event_id=sql.Identifier(event.pk.column), event_user=sql.Identifier(event.get_field("user").column),
        event_seq=sql.Identifier(event.get_field("sequence").column),
        event_type=sql.Identifier(event.get_field("type").column),
        delivery=sql.Identifier(delivery.db_table), d_endpoint=sql.Identifier(delivery.get_field("endpoint").column),
        d_event=sql.Identifier(delivery.get_field("event").column),
        d_user=sql.Identifier(delivery.get_field("user_id").column),
        d_seq=sql.Identifier(delivery.get_field("sequence").column),
        endpoint=sql.Identifier(endpoint.db_table), w_id=sql.Identifier(endpoint.pk.column),
        w_enabled=sql.Identifier(endpoint.get_field("enabled").column),
        wanted=wanted(sql.SQL("r.{}").format(sql.Identifier(event.get_field("type").column)),
                      sql.SQL("w.{}").format(sql.Identifier(endpoint.get_field("event_types").column))),
        result=sql.SQL(", ").join(sql.Identifier(name) for name in result),
    ).as_string(None)


def _numbered() -> str:
    user = User._meta
    return sql.SQL(
        "UPDATE {user} SET {seq} = {seq} + 1 WHERE {pk} = %s RETURNING {pk} AS user_id, {seq} AS sequence"
    ).format(user=sql.Identifier(user.db_table), seq=sql.Identifier(user.get_field("event_sequence").column),
             pk=sql.Identifier(user.pk.column)).as_string(None)


def wanted(event_type: sql.Composable, patterns: sql.Composable) -> sql.Composed:
    """SQL, true when one of a webhook endpoint's `event_types` (patterns in which `*` is any run of
    characters) matches an event's type: as LIKE patterns, LIKE's own `_` escaped (users/webhooks/
    allows no other special character). For a statement with parameters (`%%`)."""
    return sql.SQL("{} LIKE ANY (SELECT replace(replace(p, '_', '\\_'), '*', '%%') FROM unnest({}) p)").format(
        event_type, patterns)


# One event that is no change of the row: the user's next sequence number taken under its row lock,
# the event inserted, and its deliveries (`recording`).
RECORD = recording(_numbered(), 1, ("sequence",))


def event_params(user: User, type: str, changed: list[str], *, extra: Mapping[str, Any] | None = None,
                 context: Mapping[str, Any] | None = None) -> list[Any]:
    """One event's parameters in `recording`: of `user` as it is after the change; `extra` goes
    into its `data`, `context` only into the user's own security log (with "by staff" inside `by_staff`)."""
    payload = {**data(user, type, changed), **(extra or {})}
    return [UserEvent._meta.pk.default(), str(type), timezone.now(), json.dumps(payload),
            json.dumps({**(context or {}), **_acting.get()}), _actor.get()]


def record_params(user: User, type: str, changed: list[str], *, extra: Mapping[str, Any] | None = None,
                  context: Mapping[str, Any] | None = None) -> list[Any]:
    """RECORD's parameters for one event of `user` (as it is after the change)."""
    return [user.pk, *event_params(user, type, changed, extra=extra, context=context)]


def record(user: User, type: str, *, extra: Mapping[str, Any] | None = None,
           context: Mapping[str, Any] | None = None, using: str = DEFAULT_DB_ALIAS) -> None:
    """Record one event that is no change of the row (a login, a session ended), in the current
    transaction: numbered under the user's row lock like every other."""
    with connections[using].cursor() as cursor:
        cursor.execute(RECORD, record_params(user, type, [], extra=extra, context=context))


def record_change(user: User, before: Mapping[str, Any] | None, fields: Iterable[str], *,
                  using: str = DEFAULT_DB_ALIAS) -> None:
    """Record the events of a change just written, in its transaction."""
    found = changes(before, user, fields)
    if not found:
        return
    with connections[using].cursor() as cursor:
        for type, changed in found:
            cursor.execute(RECORD, record_params(user, type, changed))
    user.event_sequence += len(found)


@receiver(pre_save, sender=User, dispatch_uid="users.events.before_save")
def _lock_before_save(sender: type[User], instance: User, raw: bool, using: str, update_fields: Any,
                      **kwargs: Any) -> None:
    """What the row was, locked until the save's transaction (`User.save`) ends."""
    written = written_fields(update_fields)
    changing = not raw and written and not instance._state.adding
    instance._events_before = locked_state(instance.pk, written, using=using) if changing else None


@receiver(post_save, sender=User, dispatch_uid="users.events.after_save")
def _record_after_save(sender: type[User], instance: User, created: bool, raw: bool, using: str,
                       update_fields: Any, **kwargs: Any) -> None:
    """The events of the change just written, in its transaction."""
    before = instance.__dict__.pop("_events_before", None)
    if not raw and (created or before is not None):
        record_change(instance, before, written_fields(update_fields), using=using)
