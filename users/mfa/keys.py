"""The secrets of second factors at rest: apps' TOTP secrets encrypted, codes as keyed digests."""
import base64
import hashlib
import hmac
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core import checks
from django.utils.crypto import salted_hmac


def _key(setting: str = "MFA_ENCRYPTION_KEY") -> bytes:
    """The Fernet key `setting` names (MFA_ENCRYPTION_KEY, or JWT_KEYS_ENCRYPTION_KEY for the token
    signing keys), or one derived from SECRET_KEY (for development: `check --deploy` warns)."""
    if value := getattr(settings, setting):
        return value.encode()
    salt = "sidus.mfa.keys" if setting == "MFA_ENCRYPTION_KEY" else f"sidus.{setting}"
    return base64.urlsafe_b64encode(hashlib.sha256(f"{salt}:{settings.SECRET_KEY}".encode()).digest())


def encrypt(secret: str, *, setting: str = "MFA_ENCRYPTION_KEY") -> str:
    return Fernet(_key(setting)).encrypt(secret.encode()).decode()


def decrypt(token: str, *, setting: str = "MFA_ENCRYPTION_KEY") -> str | None:
    """The secret, or None if it was encrypted under another key (the key changed)."""
    try:
        return Fernet(_key(setting)).decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def digest(value: str, *, purpose: str) -> str:
    """A keyed digest (HMAC-SHA256 under the encryption key): a table of them is of no use to
    whoever reads the database without the key. For values with entropy of their own (recovery
    codes, mfa tokens), which a slow password hash would only make slow to check."""
    return salted_hmac(f"sidus.mfa.{purpose}", value, secret=_key(), algorithm="sha256").hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@checks.register(checks.Tags.security, deploy=True)
def check_encryption_key(**kwargs: Any) -> list[checks.CheckMessage]:
    """Secrets at rest (authenticator apps', the tokens' private keys) must not hang on the one key
    that also signs everything else."""
    messages = []
    if not settings.MFA_ENCRYPTION_KEY:
        messages.append(checks.Warning(
            "MFA_ENCRYPTION_KEY is not set: authenticator apps' secrets are encrypted with a key derived "
            "from SECRET_KEY.", hint="Set it to the output of `python -c \"from cryptography.fernet import "
            "Fernet; print(Fernet.generate_key().decode())\"` and keep it as you keep SECRET_KEY.", id="users.W010"))
    else:
        try:
            Fernet(settings.MFA_ENCRYPTION_KEY.encode())
        except ValueError:
            messages.append(checks.Error("MFA_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64 bytes).",
                                         id="users.E010"))
    if settings.JWT_ALGORITHM != "HS256" and not settings.JWT_KEYS_ENCRYPTION_KEY:
        messages.append(checks.Warning(
            "JWT_KEYS_ENCRYPTION_KEY is not set: the tokens' private signing keys are encrypted with a key "
            "derived from SECRET_KEY.", hint="Set it to a Fernet key of its own.", id="users.W012"))
    if not settings.MFA_REQUIRED_FOR_STAFF:
        messages.append(checks.Warning(
            "MFA_REQUIRED_FOR_STAFF is off: staff can reach the admin with a password alone.",
            hint="Set MFA_REQUIRED_FOR_STAFF=true: staff without a second factor set one up first.",
            id="users.W011"))
    return messages
