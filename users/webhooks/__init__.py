"""Webhooks: the user events posted to HTTP endpoints, signed as Standard Webhooks says, each
endpoint's users' events in order, retried, replayable, and only to public addresses.

`endpoints` holds the services (add, change, rotate, replay, send again), `sender` the loop that
posts, `network` the SSRF rules, `signing` the signatures (docs/events.md, "Webhooks").
"""
from users.webhooks.endpoints import (
    InvalidEndpoint,
    deliveries_dismiss,
    deliveries_replay,
    deliveries_resend,
    endpoint_add,
    endpoint_change,
    endpoint_enable,
    event_types_check,
    secret_rotate,
)

__all__ = [
    "InvalidEndpoint", "deliveries_dismiss", "deliveries_replay", "deliveries_resend", "endpoint_add",
    "endpoint_change", "endpoint_enable", "event_types_check", "secret_rotate",
]
