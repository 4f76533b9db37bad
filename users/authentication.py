"""JWT authentication that refuses deleted users, tokens older than the password, ended sessions."""
from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed


def user_can_authenticate(user: Any) -> bool:
    """simplejwt's USER_AUTHENTICATION_RULE: no token for inactive or deleted users."""
    return user is not None and user.is_active and getattr(user, "deleted_at", None) is None


class JWTAuthentication(BaseJWTAuthentication):
    """Tokens issued before a soft delete, a password change or a logout answer 401 at once.

    The user row is loaded on every authenticated request anyway; the logout check is one Redis
    read (and passes while Redis is down: the refresh token is blacklisted in PostgreSQL).
    """

    def get_user(self, validated_token: Any) -> Any:
        from users.tokens import token_is_current

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
