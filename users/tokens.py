"""JWT pairs that die with the password and with logout, on simplejwt's views.

Every pair carries two claims besides the user id:
- `pwd`, a fingerprint of the password hash (Django's session auth hash, an HMAC under
  SECRET_KEY, never the hash itself): any password change (API, admin, `changepassword`, shell
  `set_password` + save) makes every token issued before it answer 401, the same rule Django
  applies to sessions. simplejwt's own CHECK_REVOKE_TOKEN puts an MD5 of the hash in the token
  instead, readable by anyone holding it.
- `sid`, one id per login, kept across refreshes: logout denylists it in Redis for the access
  token's lifetime, so that session's access token stops at once, not only its refresh token.
"""
import uuid
from typing import Any

from adrf.views import APIView
from django.conf import settings
from django.utils.cache import add_never_cache_headers
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import tokens as jwt_tokens
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.settings import api_settings

from sidus.dispatch import OneHopMixin
from sidus.openapi import RETRY_AFTER, api_responses
from users import cache
from users.authentication import PASSWORD_CLAIM, SESSION_CLAIM, password_fingerprint, token_is_current
from users.models import User
from users.ratelimits import ActionThrottle
from users.serializers import StrictInputMixin


class RefreshToken(jwt_tokens.RefreshToken):
    @classmethod
    def for_user(cls, user: User) -> "RefreshToken":
        token = super().for_user(user)
        token[SESSION_CLAIM] = uuid.uuid4().hex
        token[PASSWORD_CLAIM] = password_fingerprint(user)
        return token


def token_pair(user: User) -> dict[str, str]:
    """A fresh {access, refresh} pair: a new session for `user`."""
    refresh = RefreshToken.for_user(user)
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


# --- Serializers ----------------------------------------------------------------------------------


class TokenObtainPairSerializer(StrictInputMixin, jwt_serializers.TokenObtainPairSerializer):
    """Login. The password is taken as typed: registration does not trim it either."""

    token_class = RefreshToken

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password"] = jwt_serializers.PasswordField(trim_whitespace=False, max_length=4096)


class TokenRefreshSerializer(StrictInputMixin, jwt_serializers.TokenRefreshSerializer):
    """A new pair for the same session, if the user may still log in and has the same password."""

    token_class = RefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])
        user = User.objects.filter(pk=refresh.get(api_settings.USER_ID_CLAIM)).first()
        if user is None or not token_is_current(refresh, user):
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account")
        data = {"access": str(refresh.access_token)}
        refresh.blacklist()  # rotation: the token just used never works again
        refresh.set_jti()
        refresh.set_exp()
        refresh.set_iat()
        refresh.outstand()
        data["refresh"] = str(refresh)
        return data


class TokenBlacklistSerializer(StrictInputMixin, jwt_serializers.TokenBlacklistSerializer):
    """Logout: the refresh token is blacklisted and the session's access tokens denylisted."""

    token_class = RefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        refresh = self.token_class(attrs["refresh"])
        refresh.blacklist()
        session = refresh.get(SESSION_CLAIM)
        if isinstance(session, str):
            cache.session_revoke(session, ttl=settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"])
        return {}


class TokenPairSerializer(serializers.Serializer):
    """The answer of login and refresh (documentation only)."""

    access = serializers.CharField(help_text=f"Bearer token, valid {settings.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME']}.")
    refresh = serializers.CharField(help_text=f"Single use, valid {settings.SIMPLE_JWT['REFRESH_TOKEN_LIFETIME']}.")


# --- Views ----------------------------------------------------------------------------------------


class NoStoreViewMixin(OneHopMixin):
    """Sync views whose answers carry tokens or account state (simplejwt's, the account
    lifecycle's): one thread hop each, throttles included, and no cache may keep what they say."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        add_never_cache_headers(response)
        return response


@extend_schema(
    summary="Log in",
    description="A new session: an access and a refresh token. The username is compared as at registration "
                "(NFKC, any case); the password as typed. After RATE_LIMIT_LOGIN_FAILED failures a username "
                "(or client) is refused with 429, even with the right password, until its window passes.",
    parameters=[RETRY_AFTER], responses=api_responses({200: TokenPairSerializer}, 400, 401, 413, 415, 429),
)
class TokenObtainPairView(NoStoreViewMixin, APIView, jwt_views.TokenObtainPairView):
    serializer_class = TokenObtainPairSerializer

    def get_throttles(self) -> list[Any]:
        return [ActionThrottle("login")]  # failed logins are limited in users/backends.py


@extend_schema(
    summary="Refresh the pair",
    description="A new access and refresh token for the same session; the refresh token sent is used up. "
                "401 after logout, a password change or a soft delete.",
    parameters=[RETRY_AFTER], responses=api_responses({200: TokenPairSerializer}, 400, 401, 413, 415, 429),
)
class TokenRefreshView(NoStoreViewMixin, APIView, jwt_views.TokenRefreshView):
    serializer_class = TokenRefreshSerializer

    def get_throttles(self) -> list[Any]:
        return [ActionThrottle("refresh")]


@extend_schema(
    summary="Log out",
    description="Ends the session of this refresh token: the token and every access token of the session "
                "answer 401 from now on. Other sessions of the user go on.",
    responses=api_responses({200: OpenApiResponse({"type": "object"}, description="Logged out.")}, 400, 401, 413,
                            415),
)
class TokenBlacklistView(NoStoreViewMixin, APIView, jwt_views.TokenBlacklistView):
    serializer_class = TokenBlacklistSerializer
