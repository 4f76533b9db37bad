"""The signatures of a delivery, as Standard Webhooks says, with its library."""
import base64
import secrets
from datetime import datetime

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32  # the spec asks for 24 to 64


def secret_new() -> str:
    """A new signing secret in the spec's form: `whsec_` and base64 of random bytes."""
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def headers(*, message_id: str, timestamp: datetime, body: bytes, secrets: list[str]) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature`: one `v1,` signature per secret
    (the new and, after a rotation, the previous), space-separated, any of which verifies."""
    signatures = " ".join(Webhook(secret).sign(message_id, timestamp, body) for secret in secrets)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signatures}
