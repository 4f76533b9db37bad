"""The models of the users app, one module per concern, all importable from here (as
zerver/models/ does)."""
from users.models.accounts import EmailChange, EmailChangeQuerySet, PendingSignup, Session
from users.models.cache import UnsentInvalidation
from users.models.events import ConsumedEvent, UserEvent
from users.models.factors import Authenticator, MfaChallenge
from users.models.keys import SigningKey
from users.models.outbox import OutboxEmail
from users.models.user import (
    FOLDED_FIELDS,
    MAX_USER_ID,
    User,
    UserManager,
    UserQuerySet,
    fold,
    password_fingerprint,
    user_id_from,
)
from users.models.webhooks import WebhookDelivery, WebhookEndpoint

__all__ = [
    "FOLDED_FIELDS", "MAX_USER_ID", "Authenticator", "ConsumedEvent", "EmailChange", "EmailChangeQuerySet",
    "MfaChallenge", "OutboxEmail", "PendingSignup", "Session", "SigningKey", "UnsentInvalidation", "User", "UserEvent",
    "UserManager", "UserQuerySet", "WebhookDelivery", "WebhookEndpoint", "fold", "password_fingerprint",
    "user_id_from"
]
