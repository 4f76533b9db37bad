"""The sender: posts the webhook deliveries, each endpoint's users' events in `sequence` order.

Every Celery worker runs one in a thread (`sidus.celery.WebhookSender`), and `manage.py
relay_webhooks` runs one alone; they share the work through PostgreSQL. Each round claims, per
enabled endpoint, up to its free share of WEBHOOKS_CONCURRENCY deliveries that are each the first
open one of their user (`FOR UPDATE SKIP LOCKED`, a lease instead of a held lock), posts them
concurrently on one event loop, and records what the receivers answered. So a slow or dead
endpoint fills only its own share, and one user's failing delivery holds only that user's later
events for that endpoint. A sender killed mid-flight leaves its leases to expire: the deliveries
are sent again (at least once; `webhook-id` is the event's id, for receivers to skip repeats).
A sender sleeps until an event commits (the relay's NOTIFY), a delivery ends or a retry is due.
"""
import asyncio
import contextlib
import logging
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psycopg
from django.conf import settings
from django.core.mail import mail_admins
from django.utils import timezone
from psycopg import sql

from users.events.cloudevents import CONTENT_TYPE, Outgoing, encode
from users.events.relay import CHANNEL as EVENTS_CHANNEL
from users.loop_db import LoopDatabase, conninfo
from users.models import UserEvent, WebhookDelivery, WebhookEndpoint
from users.webhooks import network, signing
from users.webhooks.endpoints import CHANNEL, endpoint_secrets

logger = logging.getLogger(__name__)

TIMEOUT = 10.0  # the whole request, connection included: a 2xx within it is a success (the spec's)
CONNECT_TIMEOUT = 5.0
LEASE = timedelta(seconds=3 * TIMEOUT)  # longer than any request: past it, a lost sender's deliveries go again
ANSWER_BYTES = 1024  # of an answer, kept for the admin; the rest is never read
POLL = 0.5  # seconds between rounds when nothing wakes the sender (a retry's time coming)
# While deliveries are in flight, a round waits this long after a wake for more of them to end: one
# round then records and replaces many (a round's statements cost more than a fast receiver's answer).
GATHER = 0.005
HEADERS = {"content-type": CONTENT_TYPE, "user-agent": "sidus-webhooks"}

_d, _e, _w = WebhookDelivery._meta.db_table, UserEvent._meta.db_table, WebhookEndpoint._meta.db_table
ENDPOINTS = f'SELECT id, url, secret, previous_secret, previous_secret_until FROM "{_w}" WHERE enabled'
# The first open delivery of each user for this endpoint, of those no one has in flight, due now.
CLAIM = f"""
WITH claimed AS (
  UPDATE "{_d}" d SET leased_until = now() + %s, attempts = d.attempts + 1, last_attempt_at = now()
  WHERE d.id IN (
    SELECT q.id FROM "{_d}" q
    WHERE q.endpoint_id = %s AND q.status = 'pending' AND q.next_attempt_at <= now()
      AND (q.leased_until IS NULL OR q.leased_until <= now())
      AND q.sequence = (SELECT min(p.sequence) FROM "{_d}" p WHERE p.endpoint_id = q.endpoint_id
                        AND p.user_id = q.user_id AND p.status IN ('pending', 'failed'))
    LIMIT %s FOR UPDATE SKIP LOCKED)
  RETURNING d.id, d.event_id, d.attempts)
SELECT c.id, c.attempts, e.id, e.user_id, e.sequence, e.type, e.time, e.data::text, e.actor
FROM claimed c JOIN "{_e}" e ON e.id = c.event_id
"""
# What the receivers answered, and each endpoint's failure clock (stopped by a success, started by a
# failure), in one statement.
RECORD = f"""
WITH answered AS (
  UPDATE "{_d}" d SET status = o.status, next_attempt_at = o.next_at, leased_until = NULL, last_status = o.code,
    last_response = o.answer, last_error = o.error, delivered_at = CASE WHEN o.status = 'delivered' THEN now() END
  FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::int[], %s::text[], %s::text[])
    AS o(id, status, next_at, code, answer, error)
  WHERE d.id = o.id),
recovered AS (UPDATE "{_w}" SET failing_since = NULL WHERE id = ANY(%s) AND failing_since IS NOT NULL)
UPDATE "{_w}" SET failing_since = coalesce(failing_since, now()) WHERE id = ANY(%s) AND enabled
RETURNING id, url, failing_since
"""
DISABLE = f'UPDATE "{_w}" SET enabled = false, disabled_reason = %s WHERE id = %s AND enabled RETURNING id'


@dataclass
class Endpoint:
    id: int
    url: str
    secrets: list[str]


@dataclass
class Outcome:
    delivery_id: int
    endpoint_id: int
    attempts: int
    code: int | None = None
    answer: str = ""
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


def describe(endpoint_id: int, url: str) -> str:
    """An endpoint as logs and emails name it: never its whole URL, which may hold a token."""
    return f"webhook endpoint {endpoint_id} ({urlsplit(url).hostname})"


class Sender:
    def __init__(self, *, concurrency: int | None = None) -> None:
        self.concurrency = concurrency or settings.WEBHOOKS_CONCURRENCY
        self.db = LoopDatabase()
        self.http: aiohttp.ClientSession | None = None
        self._in_flight: Counter[int] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcomes: list[Outcome] = []
        self._wake = asyncio.Event()
        self._secrets: dict[tuple[Any, ...], list[str]] = {}

    def run(self, stop: threading.Event) -> None:
        """Send until `stop` is set (a thread's body). An outage is a warning once, then retries."""
        asyncio.run(self.serve(stop))

    async def serve(self, stop: threading.Event) -> None:
        await self.db.start()
        self.http = client()
        listener = asyncio.create_task(self._listen())
        failing, backoff = False, 0.0
        try:
            while not stop.is_set():
                try:
                    await self.round()
                    if failing:
                        logger.warning("Webhooks: PostgreSQL back, sending again")
                    failing, backoff = False, 0.0
                except Exception as exc:  # noqa: BLE001  PostgreSQL away: wait, then try again
                    if not failing:
                        logger.warning("Webhooks not sent, will retry: %s", exc)
                        failing = True
                    backoff = min(max(backoff * 2, 0.5), 30.0)
                    await asyncio.sleep(backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL)
                if self._tasks:
                    await asyncio.sleep(GATHER)
                self._wake.clear()
        finally:
            listener.cancel()
            for task in list(self._tasks):
                task.cancel()  # their leases expire: another sender sends them again
            await asyncio.gather(listener, *self._tasks, return_exceptions=True)
            await self.http.close()
            await self.db.stop()

    async def round(self) -> int:
        """Record what ended, then claim and start what may go; how many were started."""
        await self._record()
        started = 0
        async with self.db.connection() as conn:
            endpoints = await (await conn.execute(ENDPOINTS)).fetchall()
            for endpoint_id, url, *secrets in endpoints:
                free = self.concurrency - self._in_flight[endpoint_id]
                if free <= 0:
                    continue
                rows = await (await conn.execute(CLAIM, [LEASE, endpoint_id, free])).fetchall()
                endpoint = Endpoint(endpoint_id, url, self._decrypted(endpoint_id, *secrets))
                for delivery_id, attempts, *event in rows:
                    self._in_flight[endpoint_id] += 1
                    task = asyncio.create_task(self._send(endpoint, delivery_id, attempts, Outgoing(*event)))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                started += len(rows)
        return started

    def _decrypted(self, endpoint_id: int, secret: str, previous: str, until: datetime | None) -> list[str]:
        """The endpoint's secrets in clear, decrypted once per rotation and once more when the overlap ends."""
        now = timezone.now()
        key = (endpoint_id, secret, previous if until and until > now else "")
        if key not in self._secrets:
            self._secrets = {k: v for k, v in self._secrets.items() if k[0] != endpoint_id}
            self._secrets[key] = endpoint_secrets(secret=secret, previous_secret=previous,
                                                  previous_secret_until=until, now=now)
        return self._secrets[key]

    async def _send(self, endpoint: Endpoint, delivery_id: int, attempts: int, event: Outgoing) -> None:
        outcome = Outcome(delivery_id, endpoint.id, attempts)
        try:
            outcome.code, outcome.answer = await post(endpoint, event, http=self.http)
            if not outcome.delivered:
                outcome.error = f"answered {outcome.code}" + (" (a redirect: not followed)"
                                                              if 300 <= outcome.code < 400 else "")
        except network.Refused as exc:
            outcome.error = f"refused: {exc}"
        except TimeoutError:
            outcome.error = f"no answer within {TIMEOUT:g} s"
        except asyncio.CancelledError:  # the sender stops: nothing recorded, the lease runs out
            self._in_flight[endpoint.id] -= 1
            raise
        except Exception as exc:  # noqa: BLE001  anything the network or the receiver did
            outcome.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self._in_flight[endpoint.id] -= 1
        self._outcomes.append(outcome)
        self._wake.set()

    async def _record(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        if not outcomes:
            return
        now, schedule = timezone.now(), settings.WEBHOOKS_RETRY_SCHEDULE
        columns: list[list[Any]] = [[], [], [], [], [], []]
        for o in outcomes:
            retry = not o.delivered and o.attempts <= len(schedule)
            status = "delivered" if o.delivered else "pending" if retry else "failed"
            next_at = now + timedelta(seconds=schedule[o.attempts - 1]) if retry else now
            for column, value in zip(columns, (o.delivery_id, status, next_at, o.code, o.answer, o.error)):
                column.append(value)
        recovered = sorted({o.endpoint_id for o in outcomes if o.delivered})
        failing = sorted({o.endpoint_id for o in outcomes if not o.delivered} - set(recovered))
        try:
            async with self.db.connection() as conn:
                failing_since = await (await conn.execute(RECORD, [*columns, recovered, failing])).fetchall()
        except BaseException:
            self._outcomes[:0] = outcomes  # the next round records them
            raise
        for endpoint_id, url, since in failing_since:
            if now - since >= timedelta(seconds=settings.WEBHOOKS_DISABLE_AFTER):
                await self._disable(endpoint_id, url, since)

    async def _disable(self, endpoint_id: int, url: str, since: datetime) -> None:
        reason = f"failing since {since.isoformat(timespec='seconds')} (WEBHOOKS_DISABLE_AFTER)"
        async with self.db.connection() as conn:
            if not await (await conn.execute(DISABLE, [reason, endpoint_id])).fetchone():
                return  # another sender did
        name = describe(endpoint_id, url)
        logger.error("Disabled %s: %s", name, reason)
        await asyncio.to_thread(
            mail_admins, f"Disabled {name}",
            f"Every delivery to {name} has failed since {since.isoformat(timespec='seconds')}: it is disabled, "
            "and events are no longer recorded for it.\n\nOnce it answers again, enable it in the admin and replay "
            "the events since it was disabled (Replay from a time).", fail_silently=True)

    async def _listen(self) -> None:
        """Wake the sender at each NOTIFY: an event committed, or a replay or send-again."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(**conninfo(), autocommit=True) as conn:
                    await conn.execute(sql.SQL("LISTEN {}; LISTEN {}").format(
                        sql.Identifier(EVENTS_CHANNEL), sql.Identifier(CHANNEL)))
                    self._wake.set()  # whatever committed while it was away
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001  PostgreSQL away: the round's own warning says so; poll meanwhile
                await asyncio.sleep(POLL)


def client() -> aiohttp.ClientSession:
    """A sender's HTTP client: connections kept alive per endpoint, names resolved (and checked) by
    GuardedResolver, TIMEOUT for the whole exchange, and no proxy from the environment."""
    connector = aiohttp.TCPConnector(resolver=network.GuardedResolver(), limit=0, ttl_dns_cache=10)
    return aiohttp.ClientSession(connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(
        total=TIMEOUT, connect=CONNECT_TIMEOUT))


async def post(endpoint: Endpoint, event: Outgoing, *, http: aiohttp.ClientSession) -> tuple[int, str]:
    """POST `event` to `endpoint`, signed: the status and the first ANSWER_BYTES of the answer.
    No redirect is followed; the whole exchange has TIMEOUT (TimeoutError past it)."""
    network.url_check(endpoint.url)  # the rule of now, should the settings have changed since it was saved
    if not endpoint.secrets:
        raise network.Refused("no secret of this endpoint can be read (MFA_ENCRYPTION_KEY changed?): rotate it")
    body = encode(event)
    signed = signing.headers(message_id=str(event.id), timestamp=timezone.now(), body=body, secrets=endpoint.secrets)
    async with http.post(endpoint.url, data=body, headers={**HEADERS, **signed}, allow_redirects=False) as response:
        answer = b""
        while len(answer) < ANSWER_BYTES and (chunk := await response.content.read(ANSWER_BYTES - len(answer))):
            answer += chunk
    return response.status, answer.decode("utf-8", "replace")
