"""JWT authentication that treats a soft-deleted user like a missing one."""
from typing import Any

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.authentication import JWTAuthentication as BaseJWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed


def user_can_authenticate(user: Any) -> bool:
    """simplejwt's USER_AUTHENTICATION_RULE: no token for inactive or deleted users."""
    return user is not None and user.is_active and getattr(user, "deleted_at", None) is None


class JWTAuthentication(BaseJWTAuthentication):
    """Tokens issued before a soft delete stop working at once (401)."""

    def get_user(self, validated_token: Any) -> Any:
        user = super().get_user(validated_token)
        if not user_can_authenticate(user):
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        return user


class JWTScheme(SimpleJWTScheme):
    """Documents our subclass as the Bearer scheme in the OpenAPI schema."""

    target_class = "users.authentication.JWTAuthentication"
    name = "jwtAuth"
