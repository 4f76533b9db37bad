"""The tokens' signatures: simplejwt's backend, signing with this process's key set and naming the
key in each token's header (`kid`), verifying with the key a token names (users/auth/keys.py).
JWT_ALGORITHM=HS256 keeps simplejwt's own shared-secret backend."""
import asyncio
from typing import Any

import jwt
from rest_framework_simplejwt import tokens as jwt_tokens
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError
from rest_framework_simplejwt.settings import api_settings

from users.auth.keys import ASYMMETRIC
from users.runtime import current


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class KeySetBackend(TokenBackend):
    """simplejwt's TokenBackend on the key set: `encode` signs with the key whose time has come and
    names it (`kid`); `get_verifying_key` takes the key a token names. On the event loop (the edge)
    only the copy in memory is read: a token of a key it does not know goes to Django, whose
    thread reads the keys again."""

    def encode(self, payload: dict[str, Any]) -> str:
        if self.algorithm not in ASYMMETRIC:
            return super().encode(payload)
        kid, private = current().signing_keys.current().signing()
        claims = {**payload, **({"aud": self.audience} if self.audience is not None else {}),
                  **({"iss": self.issuer} if self.issuer is not None else {})}
        return jwt.encode(claims, private, algorithm=self.algorithm, headers={"kid": kid},
                          json_encoder=self.json_encoder)

    def get_verifying_key(self, token: Any) -> Any:
        if self.algorithm not in ASYMMETRIC:
            return super().get_verifying_key(token)
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise TokenBackendError("Token is invalid") from exc
        keys = current().signing_keys
        on_loop = _on_event_loop()
        key_set = keys.current(sync=not on_loop)
        key = key_set.verifying(kid) if key_set is not None else None
        if key is None and not on_loop and isinstance(kid, str):
            key = keys.unknown().verifying(kid)
        if key is None:
            raise TokenBackendError("Token is invalid")
        return key


# Stateless but for the settings it was made with, as simplejwt's own `state.token_backend`.
TOKEN_BACKEND = KeySetBackend(
    api_settings.ALGORITHM, api_settings.SIGNING_KEY, api_settings.VERIFYING_KEY, api_settings.AUDIENCE,
    api_settings.ISSUER, None, api_settings.LEEWAY, api_settings.JSON_ENCODER,
)


class AccessToken(jwt_tokens.AccessToken):
    _token_backend = TOKEN_BACKEND


class SignedRefreshToken(jwt_tokens.RefreshToken):
    _token_backend = TOKEN_BACKEND
    access_token_class = AccessToken
