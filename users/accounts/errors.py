"""The errors of the account flows, for the API, the pages and the admin to word."""
from django.core.exceptions import ValidationError
from django.db import IntegrityError

# Database constraints behind the serializers' checks: a concurrent writer can still trip them.
_CONSTRAINT_FIELDS = {
    "user_username_folded_unique": "username",
    "user_username_key": "username",
    "user_email_folded_unique": "email",
}


class NameTaken(ValidationError):
    """A username or an address that another account has (or may take back): the API's 409."""

    def __init__(self, field: str, name: str | None = None) -> None:
        self.field = field
        message = f"A user with that {name or field} already exists."
        super().__init__({field: [ValidationError(message, code="unique")]})


def raise_for_integrity_error(exc: IntegrityError) -> None:
    """NameTaken for a unique name's constraint; anything else is raised again."""
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    field = _CONSTRAINT_FIELDS.get(constraint or "")
    if field is None:
        raise exc
    raise NameTaken(field) from exc


class LinkNotValid(Exception):
    """An emailed link that can no longer do what it says: used, superseded, expired or refused."""


class SessionNotLive(Exception):
    """The session has ended (or is not one of ours): its tokens answer 401."""


class RefreshTokenReused(Exception):
    """A refresh token that was used up already: its session has just been ended for it."""


class FactorRequired(Exception):
    """The account has a second factor and the request brought none: the API's 400 naming `code`."""


class FactorNotValid(Exception):
    """A wrong code, a used one, or a refused passkey assertion: counted under RATE_LIMIT_MFA."""


class MfaTokenNotValid(Exception):
    """A login's `mfa_token` that is unknown, used, expired, or older than the password."""


class FactorConflict(Exception):
    """The factors are not in the state the request needs (an app on already, none being set up)."""
