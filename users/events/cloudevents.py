"""The wire format: CloudEvents 1.0 in structured JSON mode (`application/cloudevents+json`)."""
import json
from typing import Any

from django.conf import settings

from users.models import UserEvent

CONTENT_TYPE = "application/cloudevents+json"


def envelope(event: UserEvent) -> dict[str, Any]:
    """The CloudEvent of a recorded event. `id` is the row's, so a redelivery or a replay carries
    the same one; `sequence` (an extension) counts the user's events from 1, without gaps."""
    return {
        "specversion": "1.0",
        "id": str(event.id),
        "source": settings.EVENTS_SOURCE,
        "type": event.type,
        "subject": str(event.user_id),
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "sequence": event.sequence,
        "data": event.data,
    }


def encode(event: UserEvent) -> bytes:
    return json.dumps(envelope(event), ensure_ascii=False, separators=(",", ":")).encode()
