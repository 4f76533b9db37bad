"""JWT pairs that die with the password and with logout, on simplejwt's views.

Every pair carries two claims besides the user id:
- `pwd`, a fingerprint of the password hash (Django's session auth hash, an HMAC under
  SECRET_KEY, never the hash itself): any password change (API, admin, `changepassword`, shell
  `set_password` + save) makes every token issued before it answer 401, the same rule Django
  applies to sessions. simplejwt's own CHECK_REVOKE_TOKEN puts an MD5 of the hash in the token
  instead, readable by anyone holding it.
- `sid`, one id per login, kept across refreshes: the id of its `Session` row. Logout (or the
  user ending the session from elsewhere) ends the row, and every token of the session answers
  401 on every worker within USER_CACHE_MAX_STALENESS (users/accounts/ended.py).

A refresh token works once: the session's row names its one live refresh token, swapped under the
row's lock by each refresh, and any other refresh token of the session ends it (reuse detection,
`accounts.session_refresh`). simplejwt's blacklist is not used: the row is the one record.
"""
import ipaddress
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import update_last_login
from rest_framework import serializers
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.settings import api_settings

from users import accounts
from users.accounts.mfa import AMR_PASSWORD
from users.auth.authentication import AMR_CLAIM, AUTH_TIME_CLAIM, PASSWORD_CLAIM, SESSION_CLAIM, refresh_refusal
from users.auth.signing import SignedRefreshToken
from users.models import User, password_fingerprint
from users.profile.serializers import StrictInputMixin
from users.ratelimits import client_ip


class RefreshToken(SignedRefreshToken):
    @property
    def jti(self) -> str:
        return self[api_settings.JTI_CLAIM]

    def rotate(self) -> None:
        """The session's next refresh token: a new id, issued now, valid for the whole lifetime."""
        self.set_jti()
        self.set_exp()
        self.set_iat()

    def pair(self) -> dict[str, str]:
        return {"refresh": str(self), "access": str(self.access_token)}


def token_pair(user: User, request: Any = None, *, login: bool = False,
               amr: list[str] | None = None) -> dict[str, str]:
    """A fresh {access, refresh} pair: a new session for `user`, from `request`'s client (a
    `login`, which may alert the owner, or a password change's new session for its caller), proved
    by `amr` (RFC 8176's values: "pwd", "otp", "hwk"), at `auth_time`. A refresh keeps both: they
    say how the session began."""
    refresh = RefreshToken.for_user(user)
    session = accounts.session_start(user=user, refresh_jti=refresh.jti, login=login, **client_of(request))
    refresh[SESSION_CLAIM] = session.pk.hex
    refresh[PASSWORD_CLAIM] = password_fingerprint(user)
    refresh[AMR_CLAIM] = amr or [AMR_PASSWORD]
    refresh[AUTH_TIME_CLAIM] = int(session.created_at.timestamp())
    return refresh.pair()


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
        if accounts.has_factor(self.user):
            raise MfaRequired(accounts.mfa_login_begin(user=self.user))
        pair = token_pair(self.user, self.context.get("request"), login=True)
        if api_settings.UPDATE_LAST_LOGIN:
            update_last_login(None, self.user)
        return pair


MFA_REQUIRED = ("The password is right; this account has a second factor: send `mfa_token` with a code, a "
                "recovery code or a passkey's answer to POST /api/v1/auth/mfa/authenticate/.")


class MfaRequired(AuthenticationFailed):
    """The 401 of a right password for an account with a second factor: no token yet, but what
    the second step needs (`accounts.mfa_login_begin`)."""

    def __init__(self, stage: dict[str, Any]) -> None:
        super().__init__(MFA_REQUIRED, "mfa_required")
        self.detail = {"detail": MFA_REQUIRED, "code": "mfa_required", **stage}  # as it is: options hold numbers


SESSION_ENDED = "This session has ended: log in again."
OLDER_THAN_THE_PASSWORD = ("This token was issued before the password last changed (or by an older release): "
                           "log in again.")
REFRESH_TOKEN_REUSED = ("This refresh token was used before, so its session has ended for every device holding "
                        "one of its tokens: log in again.")


def _session_call(call: Callable[..., None], **kwargs: Any) -> None:
    """A service of a refresh token's session; its refusals as DRF's 401s."""
    try:
        call(**kwargs)
    except accounts.SessionNotLive:
        raise AuthenticationFailed(SESSION_ENDED, "session_ended")
    except accounts.RefreshTokenReused:
        raise AuthenticationFailed(REFRESH_TOKEN_REUSED, "refresh_token_reused")


class TokenRefreshSerializer(StrictInputMixin, jwt_serializers.TokenRefreshSerializer):
    """A new pair for the same session, if the user may still log in and has the same password.
    Each refresh token works once (`accounts.session_refresh`)."""

    token_class = RefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])
        user = User.objects.filter(pk=refresh.get(api_settings.USER_ID_CLAIM)).first()
        refusal = refresh_refusal(refresh, user)
        if refusal == "user_inactive":
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account")
        if refusal is not None:
            raise AuthenticationFailed(OLDER_THAN_THE_PASSWORD, "token_not_valid")
        used = refresh.jti
        refresh.rotate()
        _session_call(accounts.session_refresh, session_id=refresh.get(SESSION_CLAIM), refresh_jti=used,
                      new_refresh_jti=refresh.jti)
        return refresh.pair()


class TokenBlacklistSerializer(StrictInputMixin, jwt_serializers.TokenBlacklistSerializer):
    """Logout: the session of the refresh token ends (its access tokens answer 401)."""

    token_class = RefreshToken

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        refresh = self.token_class(attrs["refresh"])
        _session_call(accounts.session_logout, session_id=refresh.get(SESSION_CLAIM), refresh_jti=refresh.jti)
        return {}


class TokenPairSerializer(serializers.Serializer):
    """The answer of login and refresh (documentation only)."""

    access = serializers.CharField(help_text=f"Bearer token, valid {settings.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME']}.")
    refresh = serializers.CharField(help_text=f"Single use, valid {settings.SIMPLE_JWT['REFRESH_TOKEN_LIFETIME']}.")
