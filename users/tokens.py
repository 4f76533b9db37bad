"""JWT pairs that die with the password and with logout, on simplejwt's views.

Every pair carries two claims besides the user id:
- `pwd`, a fingerprint of the password hash (Django's session auth hash, an HMAC under
  SECRET_KEY, never the hash itself): any password change (API, admin, `changepassword`, shell
  `set_password` + save) makes every token issued before it answer 401, the same rule Django
  applies to sessions. simplejwt's own CHECK_REVOKE_TOKEN puts an MD5 of the hash in the token
  instead, readable by anyone holding it.
- `sid`, one id per login, kept across refreshes: the id of its `Session` row. Logout (or the
  user ending the session from elsewhere) ends the row, and every token of the session answers
  401 on every worker within USER_CACHE_MAX_STALENESS (users/sessions.py).
"""
import ipaddress
from typing import Any

from adrf.views import APIView
from django.conf import settings
from django.contrib.auth.models import update_last_login
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
from users import examples, services
from users.authentication import PASSWORD_CLAIM, SESSION_CLAIM, password_fingerprint, token_is_current
from users.models import Session, User
from users.ratelimits import ActionThrottle, client_ip
from users.serializers import StrictInputMixin
from users.sessions import session_key


class RefreshToken(jwt_tokens.RefreshToken):
    @classmethod
    def for_session(cls, session: Session) -> "RefreshToken":
        token = cls.for_user(session.user)
        token[SESSION_CLAIM] = session.pk.hex
        token[PASSWORD_CLAIM] = password_fingerprint(session.user)
        return token


def token_pair(user: User, request: Any = None) -> dict[str, str]:
    """A fresh {access, refresh} pair: a new session for `user`, from `request`'s client."""
    refresh = RefreshToken.for_session(services.session_start(user=user, **client_of(request)))
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def client_of(request: Any) -> dict[str, Any]:
    """The IP (as the rate limits count it: IPv6 as its /64) and User-Agent of a session."""
    if request is None:
        return {}
    try:
        ip = str(ipaddress.ip_address(client_ip(request)))
    except ValueError:
        ip = None
    return {"ip": ip, "user_agent": request.META.get("HTTP_USER_AGENT", "")}


# --- Serializers ----------------------------------------------------------------------------------


class TokenObtainPairSerializer(StrictInputMixin, jwt_serializers.TokenObtainPairSerializer):
    """Login. The password is taken as typed: registration does not trim it either."""

    token_class = RefreshToken

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password"] = jwt_serializers.PasswordField(trim_whitespace=False, max_length=4096)

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        jwt_serializers.TokenObtainSerializer.validate(self, attrs)  # authenticates: self.user
        pair = token_pair(self.user, self.context.get("request"))
        if api_settings.UPDATE_LAST_LOGIN:
            update_last_login(None, self.user)
        return pair


class TokenRefreshSerializer(StrictInputMixin, jwt_serializers.TokenRefreshSerializer):
    """A new pair for the same session, if the user may still log in and has the same password."""

    token_class = RefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])
        user = User.objects.filter(pk=refresh.get(api_settings.USER_ID_CLAIM)).first()
        if user is None or not token_is_current(refresh, user) or not services.session_seen(
                session_id=refresh[SESSION_CLAIM]):
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
    """Logout: the refresh token is blacklisted and the session ends (its access tokens answer 401)."""

    token_class = RefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        refresh = self.token_class(attrs["refresh"])
        refresh.blacklist()
        session = session_key(refresh.get(SESSION_CLAIM))
        if session is not None:  # else an older form of sid: the blacklisted refresh token is all there is
            services.session_end(user_id=refresh.get(api_settings.USER_ID_CLAIM), session_id=session,
                                 reason=Session.EndReason.LOGOUT)
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
    examples=[examples.LOG_IN], parameters=[RETRY_AFTER],
    responses=api_responses({200: TokenPairSerializer}, 400, 401, 413, 415, 429),
)
class TokenObtainPairView(NoStoreViewMixin, APIView, jwt_views.TokenObtainPairView):
    serializer_class = TokenObtainPairSerializer

    def get_throttles(self) -> list[Any]:
        return [ActionThrottle("login")]  # failed logins are limited in users/backends.py


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
