"""Log in, refresh and log out: simplejwt's views, on our tokens (users/auth/tokens.py)."""
from typing import Any

from adrf.views import APIView
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework_simplejwt import views as jwt_views

from sidus.http.dispatch import NoStoreViewMixin
from sidus.http.openapi import RETRY_AFTER, api_responses
from users.api import examples
from users.api.factor_serializers import MFA_REQUIRED_ERROR
from users.auth.tokens import (
    TokenBlacklistSerializer,
    TokenObtainPairSerializer,
    TokenPairSerializer,
    TokenRefreshSerializer,
)
from users.ratelimits import ActionThrottle


@extend_schema(
    summary="Log in",
    description="A new session: an access and a refresh token. The username is compared as at registration "
                "(NFKC, any case); the password as typed. After RATE_LIMIT_LOGIN_FAILED failures a username "
                "(or client) is refused with 429, even with the right password, until its window passes. For an "
                "account with a second factor the right password is a 401 whose `code` is `mfa_required`, with an "
                "`mfa_token` for POST /auth/mfa/authenticate/. The tokens carry `amr` (RFC 8176: `pwd`, `otp`, "
                "`hwk`: how the session began) and `auth_time` (when), kept by every refresh.",
    examples=[examples.LOG_IN], parameters=[RETRY_AFTER],
    responses=api_responses({200: TokenPairSerializer}, 400, 413, 415, 429, own={401: (
        MFA_REQUIRED_ERROR, "A wrong username or password (`code`: `no_active_account`), or the right password of "
                            "an account with a second factor (`mfa_required`, with `mfa_token`).")}),
)
class TokenObtainPairView(NoStoreViewMixin, APIView, jwt_views.TokenObtainPairView):
    serializer_class = TokenObtainPairSerializer

    def get_throttles(self) -> list[Any]:
        return [ActionThrottle("login")]  # failed logins are limited in users/auth/backends.py


@extend_schema(
    summary="Refresh the pair",
    description="A new access and refresh token for the same session; the refresh token sent is used up. "
                "401 after logout, a password change or a soft delete.",
    examples=[examples.REFRESH], parameters=[RETRY_AFTER],
    responses=api_responses({200: TokenPairSerializer}, 400, 401, 413, 415, 429),
)
class TokenRefreshView(NoStoreViewMixin, APIView, jwt_views.TokenRefreshView):
    serializer_class = TokenRefreshSerializer

    def get_throttles(self) -> list[Any]:
        return [ActionThrottle("refresh")]


@extend_schema(
    summary="Log out",
    description="Ends the session of this refresh token: the token and every access token of the session "
                "answer 401 from now on. Other sessions of the user go on.",
    examples=[examples.LOG_OUT],
    responses=api_responses({200: OpenApiResponse({"type": "object"}, description="Logged out.")}, 400, 401, 413,
                            415),
)
class TokenBlacklistView(NoStoreViewMixin, APIView, jwt_views.TokenBlacklistView):
    serializer_class = TokenBlacklistSerializer
