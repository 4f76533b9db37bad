"""JWT authentication that refuses deleted users, tokens older than the password, ended sessions."""
from collections.abc import Callable
from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken

from users.accounts.ended import session_ended
from users.models import User, password_fingerprint

PASSWORD_CLAIM = "pwd"
SESSION_CLAIM = "sid"
AMR_CLAIM = "amr"  # how the session began (RFC 8176): read from the token, never looked up
AUTH_TIME_CLAIM = "auth_time"


# What `token_refusal` reads of the user's row: the edge loads exactly these.
TOKEN_FIELDS = ("id", "password", "session_epoch", "is_active", "deleted_at")


def token_refusal(token: Any, user: Any, *, ended: Callable[[str], bool] | None = None) -> str | None:
    """The one check of a valid token against its user's row, for DRF's authentication and the
    edge alike: None if it may act, else why not. No token for inactive or deleted users; none
    issued before the last password change or soft delete (the fingerprint covers both); none of
    an ended session. `ended` says whether a session has ended (`users.accounts.ended.session_ended`
    by default; the edge passes its worker's copy, which it has checked is fresh)."""
    if not user_can_authenticate(user):
        return "user_inactive"
    session = token.get(SESSION_CLAIM)
    if token.get(PASSWORD_CLAIM) != password_fingerprint(user) or not isinstance(session, str):
        return "token_not_valid"
    if (ended or session_ended)(session):
        return "token_not_valid"
    return None


def refresh_refusal(token: Any, user: Any) -> str | None:
    """`token_refusal` of a refresh token, but for its session, which the refresh itself reads
    under the session row's lock (`users.accounts.session_refresh`)."""
    return token_refusal(token, user, ended=lambda session_id: False)


def validated_token(authorization: bytes) -> Any | None:
    """The valid token in an Authorization header, checked as DRF's view checks it (signature,
    expiry, type), or None, for which that view answers 401. CPU only: the user is not loaded."""
    authentication = JWTAuthentication()
    try:
        raw = authentication.get_raw_token(authorization)
        return authentication.get_validated_token(raw) if raw is not None else None
    except (AuthenticationFailed, InvalidToken):
        return None


def user_can_authenticate(user: Any) -> bool:
    """simplejwt's USER_AUTHENTICATION_RULE: no token for inactive or deleted users."""
    return isinstance(user, User) and user.may_log_in


class JWTAuthentication(BaseJWTAuthentication):
    """Tokens issued before a soft delete or a password change answer 401 at once: the user row
    is loaded on every authenticated request anyway. Whether the session ended is known in
    memory (users/accounts/ended.py): at once on the worker that ended it, within
    USER_CACHE_MAX_STALENESS on the others."""

    def get_user(self, validated_token: Any) -> Any:
        user = super().get_user(validated_token)
        refusal = token_refusal(validated_token, user)
        if refusal == "user_inactive":
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if refusal is not None:
            raise AuthenticationFailed("Token is no longer valid.", code="token_not_valid")
        return user


class JWTScheme(SimpleJWTScheme):
    """Documents our subclass as the Bearer scheme in the OpenAPI schema."""

    target_class = "users.auth.authentication.JWTAuthentication"
    name = "jwtAuth"
