"""The links emailed to users, on Django's token generator: password reset and email verification;
and, signed with Django's TimestampSigner, the links that name a row: the one that creates a
pending signup's account, those that confirm or revert a change of address, and the one that
secures an account after a login alert. A signed link works once because using it changes what
it names (the signup is gone, the change confirmed or reverted, the session epoch moved on).

Both tokens are HMACs under SECRET_KEY with a timestamp and expire after PASSWORD_RESET_TIMEOUT.
Each works once because its hash covers what using it changes: the password hash for a reset,
the address and its verified state for a verification. Nothing is stored.

The values a token covers are hashed as one JSON array, never joined: joined, pk 1 with
"0a@x.test" reads as pk 10 with "a@x.test", and one user's link verified another's address.
"""
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from users.models import EmailChange, PendingSignup, User, user_id_from


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
    return User.objects.may_log_in().filter(pk=user_id).first()


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


_EMAIL_CHANGE_SALTS = {"confirm": "sidus.users.links.email_change.confirm",
                       "revert": "sidus.users.links.email_change.revert"}


def email_change_confirm_link(change: EmailChange) -> str:
    """Sent to the new address: following it makes the address the account's."""
    return _link("confirm-email-change", token=signing.dumps(change.pk, salt=_EMAIL_CHANGE_SALTS["confirm"]))


def email_change_revert_link(change: EmailChange) -> str:
    """Sent to the old address once the change is made: following it puts the old one back."""
    return _link("revert-email-change", token=signing.dumps(change.pk, salt=_EMAIL_CHANGE_SALTS["revert"]))


def email_change_from_token(token: str, purpose: str) -> EmailChange | None:
    """The change a confirm (EMAIL_CHANGE_TIMEOUT) or revert (EMAIL_CHANGE_REVERT_DAYS) link names,
    while the link is young enough; whether it may still be used is the service's to say."""
    max_age = settings.EMAIL_CHANGE_TIMEOUT if purpose == "confirm" else settings.EMAIL_CHANGE_REVERT_DAYS * 86400
    try:
        pk = signing.loads(token, salt=_EMAIL_CHANGE_SALTS[purpose], max_age=max_age)
    except signing.BadSignature:
        return None
    return EmailChange.objects.filter(pk=pk).select_related("user").first() if isinstance(pk, int) else None


_SECURE_ACCOUNT_SALT = "sidus.users.links.secure_account"


def secure_account_link(user: User, *, login_time: datetime) -> str:
    """In a login alert: following it ends every session of the account, once (its session epoch),
    and removes the second factors added since the login it is about."""
    value = [user.pk, user.session_epoch, int(login_time.timestamp() * 1_000_000)]  # in microseconds
    return _link("secure-account", token=signing.dumps(value, salt=_SECURE_ACCOUNT_SALT))


def secure_account_from_token(token: str) -> tuple[int, int, datetime | None] | None:
    """(user id, session epoch, the login's time) of a secure-account link younger than
    EMAIL_CHANGE_REVERT_DAYS (no time in a link made before it carried one)."""
    try:
        value = signing.loads(token, salt=_SECURE_ACCOUNT_SALT, max_age=settings.EMAIL_CHANGE_REVERT_DAYS * 86400)
    except signing.BadSignature:
        return None
    if not (isinstance(value, list) and len(value) in (2, 3) and all(type(item) is int for item in value)):
        return None
    since = datetime.fromtimestamp(value[2] / 1_000_000, tz=timezone.utc) if len(value) == 3 else None
    return value[0], value[1], since
