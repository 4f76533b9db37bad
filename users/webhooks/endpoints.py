"""The webhook endpoints and their deliveries: every change the admin, `manage.py webhooks` and the
tests make goes through here."""
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from users import events
from users.mfa.keys import decrypt, encrypt
from users.models import UserEvent, WebhookDelivery, WebhookEndpoint
from users.webhooks import network, signing

# Every sender listens here besides the events' own channel: a replay or a send-again wakes them.
CHANNEL = "sidus_webhooks"
# After a rotation the previous secret signs beside the new one this long (the spec allows several signatures).
ROTATION_OVERLAP = timedelta(hours=24)
_PATTERN = re.compile(r"[a-z0-9_.*]{1,255}")
Status = WebhookDelivery.Status


class InvalidEndpoint(ValueError):
    """An endpoint's URL or event types cannot be taken; the message says why."""


def event_types_check(patterns: Iterable[str]) -> list[str]:
    """The patterns, each a type (`user.updated`) or a pattern with `*` (`user.*`, `*`) that matches
    at least one of UserEvent.Type: a typo would match nothing, silently."""
    checked = list(dict.fromkeys(pattern.strip() for pattern in patterns if pattern.strip()))
    if not checked:
        raise InvalidEndpoint("name at least one event type, or a pattern such as user.*")
    for pattern in checked:
        regex = re.compile(".*".join(map(re.escape, pattern.split("*"))))
        if not _PATTERN.fullmatch(pattern) or not any(regex.fullmatch(type) for type in UserEvent.Type.values):
            raise InvalidEndpoint(f"{pattern!r} matches no event type (see docs/events.md)")
    return checked


def endpoint_add(*, url: str, event_types: Iterable[str], description: str = "") -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret, which is shown this once."""
    endpoint = WebhookEndpoint(description=description)
    secret = endpoint_change(endpoint=endpoint, url=url, event_types=event_types)
    return endpoint, secret or ""


def endpoint_change(*, endpoint: WebhookEndpoint, url: str, event_types: Iterable[str]) -> str | None:
    """Saves `endpoint` with `url` and `event_types` once both are checked (InvalidEndpoint); a new
    one gets its secret, returned (None for an existing one)."""
    try:
        network.url_check(url)
    except network.Refused as exc:
        raise InvalidEndpoint(str(exc)) from None
    endpoint.url, endpoint.event_types = url, event_types_check(event_types)
    secret = None
    if endpoint.pk is None:
        secret = signing.secret_new()
        endpoint.secret = encrypt(secret)
    endpoint.save()
    return secret


def endpoint_enable(*, endpoint_id: int, enabled: bool, reason: str = "") -> None:
    """Switch an endpoint on (its failure clock starts over) or off (nothing is recorded for it
    meanwhile: replay from the time it was off)."""
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(
        enabled=enabled, failing_since=None, disabled_reason="" if enabled else reason or "disabled by staff")
    _wake()


def secret_rotate(*, endpoint_id: int) -> str:
    """A new secret, returned this once; the current one signs beside it for ROTATION_OVERLAP."""
    new = signing.secret_new()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        endpoint.previous_secret, endpoint.secret = endpoint.secret, encrypt(new)
        endpoint.previous_secret_until = timezone.now() + ROTATION_OVERLAP
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    return new


def endpoint_secrets(*, secret: str, previous_secret: str, previous_secret_until: datetime | None,
                     now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one, and the previous one during its overlap.
    One under another key (MFA_ENCRYPTION_KEY changed) is left out: no signature is better than a wrong one."""
    secrets = [decrypt(secret)]
    if previous_secret and previous_secret_until and previous_secret_until > now:
        secrets.append(decrypt(previous_secret))
    return [each for each in secrets if each]


# The events to deliver again, as new deliveries or as old ones reset: each user's go in sequence order.
_REPLAY = sql.SQL(
    "INSERT INTO {delivery} (endpoint_id, event_id, user_id, sequence) "
    "SELECT w.id, e.id, e.user_id, e.sequence FROM {event} e JOIN {endpoint} w ON w.id = %s AND {wanted} "
    "WHERE e.time >= %s AND (%s::bigint IS NULL OR (e.user_id = %s AND e.sequence >= %s)) "
    "ON CONFLICT (endpoint_id, event_id) DO UPDATE SET status = 'pending', attempts = 0, next_attempt_at = now(), "
    "leased_until = NULL, last_error = '', delivered_at = NULL"
).format(delivery=sql.Identifier(WebhookDelivery._meta.db_table), event=sql.Identifier(UserEvent._meta.db_table),
         endpoint=sql.Identifier(WebhookEndpoint._meta.db_table),
         wanted=events.wanted(sql.SQL("e.type"), sql.SQL("w.event_types")))


def deliveries_replay(*, endpoint_id: int, since: datetime | None = None, user_id: int | None = None,
                      from_sequence: int = 1) -> int:
    """Deliver again, to one endpoint, the events it wants recorded since `since`, or those of one
    user from `from_sequence` on; how many. Each keeps its id (`webhook-id`): receivers see a replay."""
    if since is None and user_id is None:
        raise InvalidEndpoint("replay from a time, or a user's events from a sequence number")
    since = since or datetime.min.replace(tzinfo=dt_timezone.utc)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_REPLAY.as_string(None), [endpoint_id, since, user_id, user_id, from_sequence])
        count = cursor.rowcount
        _wake()
    return count


def deliveries_resend(*, delivery_ids: Iterable[int]) -> int:
    """Send these deliveries again from the first attempt, whatever became of them."""
    with transaction.atomic():
        count = WebhookDelivery.objects.filter(pk__in=list(delivery_ids)).update(
            status=Status.PENDING, attempts=0, next_attempt_at=timezone.now(), leased_until=None, last_error="",
            delivered_at=None)
        _wake()
    return count


def deliveries_dismiss(*, delivery_ids: Iterable[int]) -> int:
    """Give up failed deliveries: their users' later events go on to the endpoint."""
    with transaction.atomic():
        count = WebhookDelivery.objects.filter(pk__in=list(delivery_ids), status=Status.FAILED).update(
            status=Status.DISMISSED, leased_until=None)
        _wake()
    return count


def _wake() -> None:
    """Wake the senders when this transaction commits (at once outside one)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
