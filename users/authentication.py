"""JWT authentication that refuses deleted users, tokens older than the password, ended sessions."""
from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken

from users import cache

PASSWORD_CLAIM = "pwd"
SESSION_CLAIM = "sid"


def password_fingerprint(user: Any) -> str:
    """Changes whenever the password does; reveals nothing about it."""
    return user.get_session_auth_hash()[:32]


def _session_to_check(token: Any, user: Any) -> str | None:
    """The session a token of the current password names (to look up in the logout denylist);
    None when the token is stale already: issued before the last password change, or sessionless."""
    session = token.get(SESSION_CLAIM)
    if token.get(PASSWORD_CLAIM) != password_fingerprint(user) or not isinstance(session, str):
        return None
    return session


def token_is_current(token: Any, user: Any) -> bool:
    """False for a token issued before the user's last password change, or for a logged-out session."""
    session = _session_to_check(token, user)
    return session is not None and not cache.session_is_revoked(session)


async def token_is_current_async(token: Any, user: Any) -> bool:
    """`token_is_current` on the event loop (the ASGI layer's writes)."""
    session = _session_to_check(token, user)
    return session is not None and not await cache.session_is_revoked_async(session)


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
    return user is not None and user.is_active and getattr(user, "deleted_at", None) is None


class JWTAuthentication(BaseJWTAuthentication):
    """Tokens issued before a soft delete, a password change or a logout answer 401 at once.

    The user row is loaded on every authenticated request anyway; the logout check is one Redis
    read (and passes while Redis is down: the refresh token is blacklisted in PostgreSQL).
    """

    def get_user(self, validated_token: Any) -> Any:
        user = super().get_user(validated_token)
        if not user_can_authenticate(user):
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        if not token_is_current(validated_token, user):
            raise AuthenticationFailed("Token is no longer valid.", code="token_not_valid")
        return user


class JWTScheme(SimpleJWTScheme):
    """Documents our subclass as the Bearer scheme in the OpenAPI schema."""

    target_class = "users.authentication.JWTAuthentication"
    name = "jwtAuth"
