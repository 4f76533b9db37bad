"""Token introspection (RFC 7662) for services that need to know at once that a session ended:
the answer is the API's own check of a token (`token_refusal`), so `active` is exactly whether
sidus itself would take the token now."""
import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings

from users.accounts.ended import session_key
from users.auth.authentication import SESSION_CLAIM, token_refusal
from users.auth.signing import AccessToken, SignedRefreshToken
from users.models import Session, User, user_id_from

# What an active token's answer repeats of it (RFC 7662's names, and sidus's own claims).
_CLAIMS = ("sub", "iss", "aud", "exp", "iat", "jti", "sid", "amr", "auth_time")


@dataclass(frozen=True)
class ServiceClient:
    """A service named in INTROSPECTION_CLIENTS, authenticated by its secret."""

    client_id: str
    is_authenticated: bool = True


class IntrospectionClientAuthentication(BaseAuthentication):
    """HTTP Basic with an `id:secret` pair of INTROSPECTION_CLIENTS (RFC 7662 section 2.1)."""

    def authenticate(self, request: Any) -> tuple[ServiceClient, None] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"basic":
            return None
        try:
            client_id, _, secret = base64.b64decode(parts[1], validate=True).decode().partition(":")
        except (IndexError, binascii.Error, UnicodeDecodeError):
            raise AuthenticationFailed("Malformed Basic credentials.")
        expected = settings.INTROSPECTION_CLIENTS.get(client_id)
        if expected is None or not hmac.compare_digest(secret.encode(), expected.encode()):
            raise AuthenticationFailed("Unknown client or wrong secret.")
        return ServiceClient(client_id), None

    def authenticate_header(self, request: Any) -> str:
        return 'Basic realm="sidus introspection"'


class IntrospectionScheme(OpenApiAuthenticationExtension):
    """Documents the introspection clients' Basic credentials in the OpenAPI schema."""

    target_class = "users.auth.introspection.IntrospectionClientAuthentication"
    name = "introspectionClient"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "basic", "description": "An `id:secret` of INTROSPECTION_CLIENTS."}


def introspect(raw: str) -> dict[str, Any]:
    """{"active": false}, or the claims of a token sidus would take now: an access token whose
    user, password and session are as they were, or the live refresh token of a live session."""
    for token_class in (AccessToken, SignedRefreshToken):
        try:
            token = token_class(raw)
        except TokenError:
            continue
        user_id = user_id_from(str(token.get(api_settings.USER_ID_CLAIM)))
        user = User.objects.filter(pk=user_id).first() if user_id is not None else None
        if token_refusal(token, user) is not None:
            return {"active": False}
        if token_class is SignedRefreshToken and not _live_refresh_token(token):
            return {"active": False}
        answer = {name: token[name] for name in _CLAIMS if name in token}
        return {"active": True, **answer, "token_type": token[api_settings.TOKEN_TYPE_CLAIM],
                "username": user.get_username()}
    return {"active": False}


def _live_refresh_token(token: Any) -> bool:
    """Whether it is its session's one refresh token that may still be used."""
    key = session_key(token.get(SESSION_CLAIM))
    jti = token.get(api_settings.JTI_CLAIM)
    return key is not None and Session.objects.filter(pk=key, ended_at__isnull=True, refresh_jti=jti).exists()
