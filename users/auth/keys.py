"""The keys that sign the tokens: made, rotated and pruned in PostgreSQL (`SigningKey`), and each
process's copy of them, which signs and verifies from memory.

A worker reads the keys every quarter of USER_CACHE_MAX_STALENESS on its event loop, as it reads
the sessions that ended (users/accounts/ended.py). A new key signs only from `signs_from`, two
bounds after it was made, by which time every worker has read it: no worker meets a token of a
key it does not know. A process with no reader (Celery, the shell, in-process tests) reads them
when its copy is older than the bound. With JWT_ALGORITHM=HS256 the one key is SIGNING_KEY (a
shared secret, nothing published) and none of this is used.
"""
import asyncio
import base64
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from django.conf import settings
from django.utils import timezone
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from users.loop_db import read_every
from users.mfa import keys as secrets
from users.models import SigningKey

logger = logging.getLogger(__name__)

ASYMMETRIC = ("EdDSA", "ES256")
_SECRET_SETTING = "JWT_KEYS_ENCRYPTION_KEY"


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638: the SHA-256 of the key's required members, as canonical JSON; its `kid`."""
    members = ("crv", "kty", "x") if jwk["kty"] == "OKP" else ("crv", "kty", "x", "y")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _public_jwk(private: Any, algorithm: str) -> dict[str, Any]:
    """The public half of `private` as a JWK, with its `kid` (the RFC 7638 thumbprint)."""
    if algorithm == "EdDSA" and isinstance(private, ed25519.Ed25519PrivateKey):
        jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    elif algorithm == "ES256" and isinstance(private, ec.EllipticCurvePrivateKey):
        jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    else:
        raise ValueError(f"not a key of {algorithm}: JWT_ALGORITHM says which kind of key signs")
    kid = _thumbprint(jwk)
    return {**jwk, "kid": kid, "use": "sig", "alg": algorithm}


def key_new(*, algorithm: str, signs_from: Any = None) -> SigningKey:
    """A new key pair of `algorithm` (EdDSA: Ed25519; ES256: P-256), saved; it signs from `signs_from`
    (now, if None)."""
    if algorithm not in ASYMMETRIC:
        raise ValueError(f"no key pair for {algorithm!r}: JWT_ALGORITHM is EdDSA, ES256 or HS256")
    private: Any = ed25519.Ed25519PrivateKey.generate() if algorithm == "EdDSA" else ec.generate_private_key(
        ec.SECP256R1())
    jwk = _public_jwk(private, algorithm)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    now = timezone.now()
    return SigningKey.objects.create(
        kid=jwk["kid"], algorithm=algorithm, private_key=secrets.encrypt(pem, setting=_SECRET_SETTING),
        public_jwk=jwk, created_at=now, signs_from=signs_from or now)


def key_rotate() -> SigningKey:
    """A new key, signing once every worker has read it (two staleness bounds from now)."""
    bounds = timedelta(seconds=2 * settings.USER_CACHE_MAX_STALENESS)
    return key_new(algorithm=settings.JWT_ALGORITHM, signs_from=timezone.now() + bounds)


def keys_prune() -> int:
    """Delete the keys whose every token has expired: those a newer key took over from more than
    REFRESH_TOKEN_LIFETIME ago. How many went."""
    horizon = timezone.now() - settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
    keys = list(SigningKey.objects.filter(algorithm=settings.JWT_ALGORITHM).order_by("-signs_from", "-created_at"))
    signing = next((key for key in keys if key.signs_from <= timezone.now()), None)
    superseded = [key.kid for key in keys if signing is not None and key.signs_from < signing.signs_from
                  and signing.signs_from <= horizon]
    return SigningKey.objects.filter(kid__in=superseded).delete()[0]


@dataclass(frozen=True)
class KeySet:
    """What a process signs and verifies with: the keys of JWT_ALGORITHM, public and private."""

    algorithm: str
    rows: tuple[tuple[str, str, dict, Any], ...]  # (kid, encrypted private key, public JWK, signs_from)
    _private: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _public: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def signing(self) -> tuple[str, Any]:
        """(kid, private key) of the newest key whose time has come."""
        now = timezone.now()
        kid = next((kid for kid, _, _, signs_from in self.rows if signs_from <= now), self.rows[-1][0])
        if kid not in self._private:
            encrypted = next(private for k, private, _, _ in self.rows if k == kid)
            pem = secrets.decrypt(encrypted, setting=_SECRET_SETTING)
            if pem is None:
                raise RuntimeError(f"signing key {kid} cannot be decrypted: JWT_KEYS_ENCRYPTION_KEY changed")
            self._private[kid] = serialization.load_pem_private_key(pem.encode(), password=None)
        return kid, self._private[kid]

    def verifying(self, kid: Any) -> Any | None:
        """The public key `kid` names, or None."""
        if kid not in self._public:
            jwk = next((jwk for k, _, jwk, _ in self.rows if k == kid), None)
            if jwk is None:
                return None
            algorithm = OKPAlgorithm if jwk["kty"] == "OKP" else ECAlgorithm
            self._public[kid] = algorithm.from_jwk(jwk)
        return self._public[kid]

    def jwks(self) -> dict[str, Any]:
        """RFC 7517's JWK Set: every key that verifies."""
        return {"keys": [jwk for _, _, jwk, _ in self.rows]}


def _rows_sql() -> tuple[str, list[Any]]:
    query = SigningKey.objects.filter(algorithm="x").values_list("kid", "private_key", "public_jwk", "signs_from")
    return query.query.get_compiler("default").as_sql()


def key_set_from_environment() -> KeySet | None:
    """The keys of JWT_SIGNING_KEYS (PEMs, the first signing), or None when it is empty."""
    if not settings.JWT_SIGNING_KEYS:
        return None
    rows, epoch = [], timezone.now().replace(year=2000)
    for n, pem in enumerate(settings.JWT_SIGNING_KEYS):
        private = serialization.load_pem_private_key(pem.strip().encode(), password=None)
        jwk = _public_jwk(private, settings.JWT_ALGORITHM)
        signs_from = epoch if n == 0 else timezone.now().replace(year=9999)  # the others verify only
        rows.append((jwk["kid"], secrets.encrypt(pem.strip(), setting=_SECRET_SETTING), jwk, signs_from))
    return KeySet(settings.JWT_ALGORITHM, tuple(rows))


def key_set_read() -> KeySet:
    """The keys as PostgreSQL has them (sync); the first one made if there is none."""
    if (from_environment := key_set_from_environment()) is not None:
        return from_environment
    rows = list(SigningKey.objects.filter(algorithm=settings.JWT_ALGORITHM)
                .values_list("kid", "private_key", "public_jwk", "signs_from"))
    if not rows:
        key = key_new(algorithm=settings.JWT_ALGORITHM)
        rows = [(key.kid, key.private_key, key.public_jwk, key.signs_from)]
    return KeySet(settings.JWT_ALGORITHM, tuple(rows))


class SigningKeys:
    """This process's copy of the key set (a part of the runtime)."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self._set: KeySet | None = None
        self._fresh_until = 0.0
        self._forced_at = float("-inf")  # the last read an unknown kid asked for
        self._task: asyncio.Task | None = None

    def current(self, *, sync: bool = True) -> KeySet | None:
        """The key set: this copy while fresh; else, from sync code, read again (`sync=False`, the
        event loop's callers, take the copy as it is, or None)."""
        if self._set is not None and (time.monotonic() <= self._fresh_until or not sync):
            return self._set
        if not sync:
            return None
        began = time.monotonic()
        self._set = key_set_read()
        self._fresh_until = began + settings.USER_CACHE_MAX_STALENESS
        return self._set

    def unknown(self) -> KeySet | None:
        """A token named a key this copy does not know, from sync code: read again at once (a key
        made a moment ago), but at most once per staleness bound, so that tokens naming made-up
        keys cost no query each."""
        now = time.monotonic()
        if now - self._forced_at >= settings.USER_CACHE_MAX_STALENESS:
            self._forced_at = now
            self._fresh_until = min(self._fresh_until, now)
        return self.current()

    async def read(self) -> None:
        began = time.monotonic()
        sql, _ = _rows_sql()
        async with self.db.connection() as connection:
            rows = await (await connection.execute(sql, [settings.JWT_ALGORITHM])).fetchall()
        if not rows:  # no key yet: the first login makes one, in its thread (`current`)
            self._set = None
            return
        known = self._set
        fresh = KeySet(settings.JWT_ALGORITHM, tuple(tuple(row) for row in rows))
        self._set = known if known is not None and known.rows == fresh.rows else fresh  # keep what it decoded
        self._fresh_until = began + settings.USER_CACHE_MAX_STALENESS

    async def start(self) -> None:
        if settings.JWT_SIGNING_KEYS:  # from a secret store: they change with the deployment only
            self._set, self._fresh_until = key_set_from_environment(), float("inf")
        elif settings.JWT_ALGORITHM in ASYMMETRIC and self._task is None:
            await self.read()  # before the first request
            self._task = asyncio.create_task(self._run(), name="signing-keys")

    async def stop(self) -> None:
        task, self._task = self._task, None
        self._fresh_until = 0.0
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        """While PostgreSQL is away the keys known go on signing and verifying."""
        await read_every(self.read, interval=settings.USER_CACHE_MAX_STALENESS / 4, logger=logger,
                         failing="Signing keys not read, the ones known go on: %r")
