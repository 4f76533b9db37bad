"""JWT authentication that refuses deleted users, tokens older than the password, ended sessions."""
from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed

from users import cache

PASSWORD_CLAIM = "pwd"
SESSION_CLAIM = "sid"


def password_fingerprint(user: Any) -> str:
    """Changes whenever the password does; reveals nothing about it."""
    return user.get_session_auth_hash()[:32]


def token_is_current(token: Any, user: Any) -> bool:
    """False for a token issued before the user's last password change, or for a logged-out session."""
    if token.get(PASSWORD_CLAIM) != password_fingerprint(user):
        return False
    session = token.get(SESSION_CLAIM)
    return isinstance(session, str) and not cache.session_is_revoked(session)


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
