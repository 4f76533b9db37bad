"""The tokens' signatures: simplejwt's backend, signing with this process's key set and naming the
key in each token's header (`kid`), verifying with the key a token names (users/auth/keys.py), and
not again while the same token comes back (`VerifiedTokens`). JWT_ALGORITHM=HS256 keeps simplejwt's
own shared-secret backend."""
import asyncio
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
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


class VerifiedTokens:
    """The tokens this process verified lately, by their exact bytes (a part of the runtime).

    A client sends one access token with every request of its lifetime, and checking the signature
    again is most of the cost of authenticating it. A token kept here is taken as verified only
    while the key that verified it is still the one its `kid` names in the key set, and until its
    `exp` (with the leeway) has passed: the only claim whose check a later moment can turn. What a
    token is allowed (its type, its user's row, its session) is checked on every request as
    before. Envoy's `jwt_authn` keeps the same kind of cache."""

    SIZE = 10_000

    def __init__(self) -> None:
        self._tokens: OrderedDict[Any, tuple[str, Any, Any, float]] = OrderedDict()
        self._lock = threading.Lock()  # Django's threads and the event loop share it

    def get(self, token: Any, key_of: Callable[[Any], Any]) -> dict[str, Any] | None:
        """The payload of `token` if it was verified and still would be, else None."""
        with self._lock:
            kept = self._tokens.get(token)
            if kept is None:
                return None
            self._tokens.move_to_end(token)
        payload, kid, key, until = kept
        if time.time() >= until or key_of(kid) is not key:
            with self._lock:
                self._tokens.pop(token, None)
            return None
        return json.loads(payload)  # a copy of its own: a caller may change its token (a refresh does)

    def keep(self, token: Any, payload: dict[str, Any], kid: Any, key: Any, leeway: float) -> None:
        """`token`, verified with `key` (named `kid`), and its payload."""
        exp = payload.get("exp")
        if not isinstance(exp, (int, float)) or key is None:
            return  # a token that never expires, or whose key is no longer known, is verified each time
        with self._lock:
            self._tokens[token] = (json.dumps(payload), kid, key, exp + leeway)
            self._tokens.move_to_end(token)
            if len(self._tokens) > self.SIZE:
                self._tokens.popitem(last=False)


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

    def decode(self, token: Any, verify: bool = True) -> dict[str, Any]:
        """simplejwt's, but a token verified lately (`VerifiedTokens`) is not verified again."""
        if not verify:
            return super().decode(token, verify=False)
        verified = current().verified_tokens
        kept = token.decode("latin-1") if isinstance(token, bytes) else token  # a header's bytes, or a str
        payload = verified.get(kept, self._known_key)
        if payload is None:
            payload = super().decode(token)
            kid = self._kid(token)
            verified.keep(kept, payload, kid, self._known_key(kid), self.get_leeway().total_seconds())
        return payload

    def get_verifying_key(self, token: Any) -> Any:
        if self.algorithm not in ASYMMETRIC:
            return super().get_verifying_key(token)
        kid = self._kid(token)
        key = self._known_key(kid)
        if key is None and not _on_event_loop() and isinstance(kid, str):
            key = current().signing_keys.unknown().verifying(kid)
        if key is None:
            raise TokenBackendError("Token is invalid")
        return key

    def _kid(self, token: Any) -> Any:
        if self.algorithm not in ASYMMETRIC:
            return None
        try:
            return jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise TokenBackendError("Token is invalid") from exc

    def _known_key(self, kid: Any) -> Any | None:
        """The key `kid` names in this process's key set as it is (HS256: the one secret), or None.
        On the event loop only the copy in memory is read."""
        if self.algorithm not in ASYMMETRIC:
            return super().get_verifying_key(None)  # one per process: no key set, no `kid`
        key_set = current().signing_keys.current(sync=not _on_event_loop())
        return key_set.verifying(kid) if key_set is not None else None


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
