"""The secrets of second factors at rest: apps' TOTP secrets encrypted, codes as keyed digests."""
import base64
import hashlib
import hmac
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core import checks
from django.utils.crypto import salted_hmac


def _key() -> bytes:
    """MFA_ENCRYPTION_KEY, or one derived from SECRET_KEY (for development: `check --deploy` warns)."""
    if settings.MFA_ENCRYPTION_KEY:
        return settings.MFA_ENCRYPTION_KEY.encode()
    derived = hashlib.sha256(f"sidus.mfa.keys:{settings.SECRET_KEY}".encode()).digest()
    return base64.urlsafe_b64encode(derived)


def encrypt(secret: str) -> str:
    return Fernet(_key()).encrypt(secret.encode()).decode()


def decrypt(token: str) -> str | None:
    """The secret, or None if it was encrypted under another key (the key changed)."""
    try:
        return Fernet(_key()).decrypt(token.encode()).decode()
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
    """Secrets of authenticator apps must not hang on the one key that also signs everything else."""
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
    if not settings.MFA_REQUIRED_FOR_STAFF:
        messages.append(checks.Warning(
            "MFA_REQUIRED_FOR_STAFF is off: staff can reach the admin with a password alone.",
            hint="Set MFA_REQUIRED_FOR_STAFF=true: staff without a second factor set one up first.",
            id="users.W011"))
    return messages
