"""The wire format: CloudEvents 1.0 in structured JSON mode (`application/cloudevents+json`)."""
import json
import uuid
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings

from users.models import UserEvent

CONTENT_TYPE = "application/cloudevents+json"


class Outgoing(NamedTuple):
    """An event as the relay reads it: `data` as the JSON text stored, spliced in as it is."""

    id: uuid.UUID
    user_id: int
    sequence: int
    type: str
    time: datetime
    data: str
    actor: str

    @classmethod
    def of(cls, event: UserEvent) -> "Outgoing":
        return cls(event.id, event.user_id, event.sequence, event.type, event.time, json.dumps(event.data),
                   event.actor)


# Digits of `sequence`: a bigint's 19 and one, so that strings compare as their numbers do.
SEQUENCE_DIGITS = 20


def encode(event: Outgoing) -> bytes:
    """The CloudEvent's bytes. `id` is the row's, so a redelivery or a replay carries the same one.
    `subjectsequence`, an extension of ours (an Integer), counts the events of the (`source`,
    `subject`) from 1, without gaps. `sequence` is the same number as the CloudEvents sequence
    extension defines it: a String whose lexicographic order is the events' order (zero-padded).
    `actor`, an extension of ours, says who caused it: `user`, `staff` or `system`."""
    attributes = {
        "specversion": "1.0",
        "id": str(event.id),
        "source": settings.EVENTS_SOURCE,
        "type": event.type,
        "subject": str(event.user_id),
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "subjectsequence": event.sequence,
        "sequence": str(event.sequence).zfill(SEQUENCE_DIGITS),
        "actor": event.actor,
    }
    head = json.dumps(attributes, ensure_ascii=False, separators=(",", ":"))
    return f'{head[:-1]},"data":{event.data}}}'.encode()


def envelope(event: UserEvent) -> dict[str, Any]:
    """The CloudEvent of a recorded event, as a consumer decodes it."""
    return json.loads(encode(Outgoing.of(event)))
