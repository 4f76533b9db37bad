"""The links emailed to users, on Django's token generator: password reset and email verification;
and the link that creates a pending signup's account, signed with Django's TimestampSigner.

Both tokens are HMACs under SECRET_KEY with a timestamp and expire after PASSWORD_RESET_TIMEOUT.
Each works once because its hash covers what using it changes: the password hash for a reset,
the address and its verified state for a verification. Nothing is stored.

The values a token covers are hashed as one JSON array, never joined: joined, pk 1 with
"0a@x.test" reads as pk 10 with "a@x.test", and one user's link verified another's address.
"""
import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from users.models import PendingSignup, User, user_id_from


class PasswordResetLinkTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset token over the same values (the password hash, the last login, the address),
    delimited."""

    key_salt = "sidus.users.links.PasswordResetLinkTokenGenerator"

    def _make_hash_value(self, user: Any, timestamp: int) -> str:
        last_login = user.last_login.replace(microsecond=0, tzinfo=None).isoformat() if user.last_login else None
        return json.dumps([user.pk, user.password, last_login, timestamp, user.email])


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    """Works for the address it was made for, until that address is verified."""

    key_salt = "sidus.users.links.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user: Any, timestamp: int) -> str:
        return json.dumps([user.pk, user.email, user.email_verified, timestamp])


password_reset_token = PasswordResetLinkTokenGenerator()
email_verification_token = EmailVerificationTokenGenerator()


def uid_encode(user: User) -> str:
    return urlsafe_base64_encode(force_bytes(user.pk))


def user_from_uid(uid: str) -> User | None:
    """The alive, active user a link's uid names, or None for anything else."""
    try:
        user_id = user_id_from(urlsafe_base64_decode(uid).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    if user_id is None:
        return None
    return User.objects.alive().filter(pk=user_id, is_active=True).first()


def _link(path: str, **params: str) -> str:
    return f"{settings.FRONTEND_URL.rstrip('/')}/{path}?{urlencode(params)}"


def password_reset_link(user: User) -> str:
    return _link("password-reset", uid=uid_encode(user), token=password_reset_token.make_token(user))


def email_verification_link(user: User) -> str:
    return _link("verify-email", uid=uid_encode(user), token=email_verification_token.make_token(user))


_SIGNUP_SALT = "sidus.users.links.signup"


def signup_link(signup: PendingSignup) -> str:
    return _link("confirm-signup", token=signing.dumps(signup.pk, salt=_SIGNUP_SALT))


def signup_from_token(token: str) -> PendingSignup | None:
    """The pending signup a link names, while the link is younger than PASSWORD_RESET_TIMEOUT."""
    try:
        pk = signing.loads(token, salt=_SIGNUP_SALT, max_age=settings.PASSWORD_RESET_TIMEOUT)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    return PendingSignup.objects.filter(pk=pk).first() if isinstance(pk, int) else None
