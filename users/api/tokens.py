"""Log in, refresh and log out: simplejwt's views, on our tokens (users/auth/tokens.py); and the
introspection of a token, for other services (users/auth/introspection.py)."""
from typing import Any

from adrf.views import APIView
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework_simplejwt import views as jwt_views

from sidus.http.dispatch import NoStoreViewMixin
from sidus.http.openapi import DETAIL_ERROR, RETRY_AFTER, api_responses
from sidus.http.parsers import JSONParser
from users.api import examples
from users.api.factor_serializers import MFA_REQUIRED_ERROR
from users.auth.introspection import IntrospectionClientAuthentication, introspect
from users.auth.tokens import (
    TokenBlacklistSerializer,
    TokenObtainPairSerializer,
    TokenPairSerializer,
    TokenRefreshSerializer,
)
from users.profile.serializers import StrictInputMixin
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


class IntrospectSerializer(StrictInputMixin, serializers.Serializer):
    token = serializers.CharField(max_length=4096, help_text="An access or refresh token of sidus.")
    token_type_hint = serializers.ChoiceField(choices=["access_token", "refresh_token"], required=False,
                                              help_text="RFC 7662's hint; both kinds are tried anyway.")


class IntrospectionSerializer(serializers.Serializer):
    """RFC 7662's answer (documentation only): `active`, and for an active token its claims."""

    active = serializers.BooleanField()
    sub = serializers.CharField(required=False, help_text="The user's id.")
    username = serializers.CharField(required=False)
    token_type = serializers.CharField(required=False, help_text="`access` or `refresh`.")
    exp = serializers.IntegerField(required=False)
    iat = serializers.IntegerField(required=False)
    iss = serializers.CharField(required=False)
    jti = serializers.CharField(required=False)
    sid = serializers.CharField(required=False, help_text="The session.")
    amr = serializers.ListField(child=serializers.CharField(), required=False)
    auth_time = serializers.IntegerField(required=False)


class IntrospectView(NoStoreViewMixin, APIView):
    authentication_classes = [IntrospectionClientAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        summary="Introspect a token (RFC 7662)", operation_id="auth_introspect", request=IntrospectSerializer,
        description="For services that must know at once that a session ended: `active` is whether sidus itself "
                    "would take the token now (signature, expiry, the user, the password, the session; a refresh "
                    "token must be its session's live one). Authenticated with HTTP Basic and an `id:secret` pair of "
                    "INTROSPECTION_CLIENTS; the body is JSON or a form, as RFC 7662 sends it.",
        examples=[examples.INTROSPECT],
        responses=api_responses({200: IntrospectionSerializer}, 400, 413, 415, own={
            401: (DETAIL_ERROR, "No introspection client, or a wrong secret.")}),
    )
    def post(self, request: Request) -> Response:
        serializer = IntrospectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(introspect(serializer.validated_data["token"]))
