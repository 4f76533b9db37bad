"""The relay: publishes committed user events to the broker, each user's in `sequence` order.

Every Celery worker runs one (`sidus.celery.EventRelay`), and `manage.py relay_events` runs one
alone. Each round claims, in one transaction, the first unpublished event of up to a batch of
users (`FOR UPDATE SKIP LOCKED`; a user whose earlier event is unpublished, claimed elsewhere or
parked is skipped), publishes them with publisher confirms, and marks published the ones the
broker confirmed before it commits. So several relays never publish one user's events out of
order, a relay killed mid-batch leaves its events to the next (delivered again: at least once),
and an event the broker refused is tried again later, then parked, holding up only its user.
A relay sleeps on PostgreSQL's LISTEN: the commit that records an event wakes it.
"""
import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import psycopg
from amqp import Message
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, close_old_connections, connection, connections, transaction
from django.utils import timezone
from kombu import Connection, Exchange

from users.events.cloudevents import CONTENT_TYPE, Outgoing, encode
from users.loop_db import conninfo
from users.models import UserEvent

logger = logging.getLogger(__name__)

CHANNEL = "sidus_events"  # NOTIFY'd by the trigger of migration 0007 at each commit that records events

_table = UserEvent._meta.db_table
# The first unpublished event of each user, of those no other relay holds: at most one per user per
# round, so that a user's next event is published only once the broker confirmed this one. In no
# order across users: an ORDER BY would sort the whole backlog for each round. The head is found by
# a subquery per row on the unpublished index, a plan that does not depend on the table's statistics
# (a NOT EXISTS became a nested loop over the whole backlog when they said the table was small).
CLAIM = f"""
SELECT e.id, e.user_id, e.sequence, e.type, e.time, e.data::text, e.actor, e.attempts FROM "{_table}" e
WHERE e.published_at IS NULL AND e.parked_at IS NULL AND (e.available_at IS NULL OR e.available_at <= %s)
  AND e.sequence = (SELECT min(p.sequence) FROM "{_table}" p WHERE p.user_id = e.user_id AND p.published_at IS NULL)
LIMIT %s
FOR UPDATE OF e SKIP LOCKED
"""

MARK_PUBLISHED = f'UPDATE "{_table}" SET published_at = %s WHERE id = ANY(%s)'


class BrokerUnavailable(Exception):
    """The broker cannot be reached, or did not confirm in time: an outage, not the event's fault."""


class Publisher:
    """Publishes CloudEvents to the topic exchange, persistent, and waits for the broker's
    confirms (kombu and py-amqp; confirms are collected for a whole batch, not one by one)."""

    def __init__(self, url: str | None = None, exchange: str | None = None, timeout: float | None = None) -> None:
        self.url = url or settings.EVENTS_BROKER_URL
        self.exchange = Exchange(exchange or settings.EVENTS_EXCHANGE, "topic", durable=True)
        self.timeout = timeout if timeout is not None else settings.EVENTS_BROKER_TIMEOUT
        self._connection: Connection | None = None
        self._channel: Any = None
        self._tag = self._floor = 0
        self._outcomes: dict[int, bool] = {}  # delivery tag -> confirmed (ack) or refused (nack)

    def publish(self, events: list[Outgoing]) -> dict[Any, str | None]:
        """Publishes `events`; each one's outcome: None once confirmed, else why it was refused.
        Raises BrokerUnavailable (and forgets the connection) when the broker is away or slow."""
        try:
            channel = self._channel or self._connect()
            self._floor = self._tag + 1  # every earlier tag was confirmed or refused
            tags: dict[int, Any] = {}
            outcomes: dict[Any, str | None] = {}
            exchange = self.exchange.name
            for event in events:
                try:
                    # py-amqp's own publish, under kombu's connection: kombu's Producer doubles its cost.
                    message = Message(encode(event), content_type=CONTENT_TYPE, content_encoding="utf-8",
                                      delivery_mode=2, message_id=str(event.id))
                    channel.basic_publish(message, exchange=exchange, routing_key=event.type)
                except self._connection.connection_errors:
                    raise
                except Exception as exc:  # this event cannot be sent (a routing key too long, say)
                    outcomes[event.id] = f"{type(exc).__name__}: {exc}"
                    self.close()  # the channel may be half-written: start clean
                    channel = self._connect()
                    continue
                self._tag += 1
                tags[self._tag] = event.id
            self._wait(tags)
        except (*self._errors(), OSError, TimeoutError) as exc:
            self.close()
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        for tag, event_id in tags.items():
            outcomes[event_id] = None if self._outcomes.pop(tag) else "refused by the broker (nack)"
        return outcomes

    def _wait(self, tags: dict[int, Any]) -> None:
        deadline = time.monotonic() + self.timeout
        while not all(tag in self._outcomes for tag in tags):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no confirm within {self.timeout} s")
            self._connection.drain_events(timeout=remaining)

    def _connect(self) -> Any:
        self.close()
        connection = self._connection = Connection(self.url, connect_timeout=self.timeout)
        # One try: the relay has its own backoff (kombu's connect() would retry once, 2 s later).
        connection.ensure_connection(max_retries=0, reraise_as_library_errors=False)
        channel = connection.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(lambda tag, multiple: self._confirm(tag, multiple, True))
        channel.events["basic_nack"].add(lambda tag, multiple: self._confirm(tag, multiple, False))
        self.exchange(channel).declare()
        self._tag = 0
        self._outcomes.clear()
        self._channel = channel
        return channel

    def _confirm(self, tag: int, multiple: bool, ok: bool) -> None:
        for each in range(self._floor if multiple else tag, tag + 1):  # `multiple`: every tag up to this one
            self._outcomes.setdefault(each, ok)

    def _errors(self) -> tuple[type[BaseException], ...]:
        connection = self._connection or Connection(self.url)
        return (*connection.connection_errors, *connection.channel_errors)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # noqa: BLE001  closing a broken connection may fail as well
                pass


class Relay:
    def __init__(self, publisher: Publisher | None = None, *, batch: int | None = None) -> None:
        self.publisher = publisher or Publisher()
        self.batch = batch or settings.EVENTS_RELAY_BATCH
        self._listener: psycopg.Connection | None = None

    def relay_once(self) -> int:
        """One round; how many events were published. Raises BrokerUnavailable in an outage (the
        round's claims are released, nothing marked)."""
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(CLAIM, [now, self.batch])
            claimed = cursor.fetchall()
            if not claimed:
                return 0
            events = [Outgoing(*row[:7]) for row in claimed]
            outcomes = self.publisher.publish(events)
            published = [event.id for event in events if outcomes.get(event.id, "not sent") is None]
            cursor.execute(MARK_PUBLISHED, [timezone.now(), published])
            for row, event in zip(claimed, events):
                error = outcomes.get(event.id, "not sent")
                if error is not None:
                    self._failed(event, row[7] + 1, error, now)
        return len(published)

    def _failed(self, event: Outgoing, attempts: int, error: str, now: Any) -> None:
        parked = attempts >= settings.EVENTS_MAX_ATTEMPTS
        if parked:
            logger.error("Event %s (%s of user %s) parked after %d tries: %s",
                         event.id, event.type, event.user_id, attempts, error)
        UserEvent.objects.filter(pk=event.id).update(
            attempts=attempts, last_error=error, parked_at=now if parked else None,
            available_at=now + timedelta(seconds=min(2 ** attempts, 300)),
        )

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set: at once when an event commits, else every poll interval.
        An outage is a warning once, then retries with backoff; no event is lost meanwhile."""
        backoff = 0.0
        outage = False
        while not stop.is_set():
            try:
                self._listen()
                published = self.relay_once()
                if outage:
                    logger.warning("Events broker back: publishing again")
                    outage = False
                backoff = 0.0
                if published < self.batch:
                    self._wait(settings.EVENTS_RELAY_POLL_INTERVAL, stop)
            except Exception as exc:  # noqa: BLE001  the broker or PostgreSQL away: wait, then try again
                if not outage:
                    logger.warning("Events not published, will retry (%s waiting): %s", _backlog(), exc)
                    outage = True
                self._close_database()
                backoff = min(max(backoff * 2, 0.5), 30.0)
                stop.wait(backoff)
        self.publisher.close()
        self._close_database()

    def _listen(self) -> None:
        if self._listener is None:
            self._listener = psycopg.connect(**conninfo(), autocommit=True)
            self._listener.execute(f"LISTEN {CHANNEL}")

    def _wait(self, timeout: float, stop: threading.Event) -> None:
        """Until an event commits (a NOTIFY), `timeout` passes, or `stop` is set (checked each 0.5 s)."""
        deadline = time.monotonic() + timeout
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            if any(True for _ in self._listener.notifies(timeout=min(remaining, 0.5), stop_after=1)):
                return

    def _close_database(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.close()
            except Exception:  # noqa: BLE001
                pass
        close_old_connections()
        connections[DEFAULT_DB_ALIAS].close()


def _backlog() -> str:
    try:
        return str(UserEvent.objects.filter(published_at__isnull=True).count())
    except Exception:  # noqa: BLE001  PostgreSQL may be what is away
        return "unknown"


def backlog() -> int:
    """Events committed and not yet published (parked ones included): what /health/ reports."""
    return UserEvent.objects.filter(published_at__isnull=True).count()


def events_release(*, event_ids: Iterable[Any]) -> int:
    """Parked events tried again by the relay (from the admin): their attempts start over."""
    return UserEvent.objects.filter(pk__in=list(event_ids), published_at__isnull=True, parked_at__isnull=False).update(
        parked_at=None, attempts=0, available_at=None, last_error=""
    )
