"""Proving a second factor: at login (after the password, with a single-use `mfa_token`), with a
passkey alone, and before a sensitive change. One check, `factor_verify`, for all of them.

An app's code works once (its step is kept, and no earlier or equal step is taken again), a
recovery code once (its digest is struck off), a passkey's assertion once (its challenge is used
up) and only with a sign counter that moved on. A failure is in the owner's security log
(`user.mfa_failed`); counting it against RATE_LIMIT_MFA is the caller's, which has the client."""
import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from users import events
from users.accounts.errors import FactorNotValid, FactorRequired, MfaTokenNotValid
from users.accounts.factors import challenge_new, challenge_use, has_factor
from users.accounts.sessions import device_label
from users.mfa import keys, passkeys, recovery, totp
from users.mfa.passkeys import PasskeyRefused
from users.models import Authenticator, MfaChallenge, User, UserEvent, password_fingerprint

logger = logging.getLogger(__name__)

Type = Authenticator.Type
MFA_TOKEN_SECONDS = 300
# RFC 8176's Authentication Method Reference values the tokens carry (`amr`).
AMR_PASSWORD, AMR_CODE, AMR_PASSKEY = "pwd", "otp", "hwk"


def methods_of(user: User) -> list[str]:
    """The ways `user` can prove a second factor: "totp", "recovery_code", "passkey"."""
    types = set(Authenticator.objects.filter(user=user, confirmed_at__isnull=False).values_list("type", flat=True))
    names = {Type.TOTP: "totp", Type.RECOVERY_CODES: "recovery_code", Type.PASSKEY: "passkey"}
    return [names[kind] for kind in (Type.TOTP, Type.RECOVERY_CODES, Type.PASSKEY) if kind in types]


def assertion_options(*, user: User) -> dict[str, Any] | None:
    """Options for `navigator.credentials.get()` with one of `user`'s passkeys (None: they have
    none), whose answer goes as `credential` with the login's second step or a sensitive change."""
    allow = list(Authenticator.objects.filter(user=user, type=Type.PASSKEY).values_list("credential_id", flat=True))
    if not allow:
        return None
    options, challenge = passkeys.assertion_options(allow=allow)
    challenge_new(kind=MfaChallenge.Kind.ASSERT, user=user, challenge=challenge)
    return options


def factor_verify(*, user: User, code: str | None = None, credential: Any = None,
                  client: Mapping[str, Any] | None = None) -> str:
    """Check the second factor of `user`: an app's code or a recovery code (`code`), or a passkey's
    answer to `assertion_options` (`credential`), from `client` (its ip and user_agent, for the
    owner's log). The `amr` value it earns; FactorRequired if none was given, FactorNotValid
    (logged) if it is wrong."""
    if not code and not credential:
        raise FactorRequired()
    context = _context_of(client)
    try:
        if credential:
            _passkey_verify(user, credential, kind=MfaChallenge.Kind.ASSERT)
            return AMR_PASSKEY
        with transaction.atomic():
            if isinstance(code, str) and recovery.looks_like(code):
                _recovery_code_use(user, code, context)
            else:
                _totp_verify(user, code)
            return AMR_CODE
    except FactorNotValid:
        with transaction.atomic():
            method = "passkey" if credential else "recovery_codes" if recovery.looks_like(code or "") else "totp"
            events.record(user, UserEvent.Type.MFA_FAILED, extra={"method": method}, context=context)
        raise


def _totp_verify(user: User, code: Any) -> None:
    app = (Authenticator.objects.select_for_update()
           .filter(user=user, type=Type.TOTP, confirmed_at__isnull=False).first())
    secret = keys.decrypt(app.data.get("secret", "")) if app is not None else None
    step = totp.step_of(secret, code, after=app.data.get("last_step")) if secret is not None else None
    if step is None:
        raise FactorNotValid()
    app.data = {**app.data, "last_step": step}
    app.last_used_at = timezone.now()
    app.save(update_fields=["data", "last_used_at"])


def _context_of(client: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the owner's log says of where a check came from: the IP and a device label."""
    if not client:
        return {}
    return {"ip": client.get("ip"), "device": device_label(client.get("user_agent", ""))}


def _recovery_code_use(user: User, code: str, context: dict[str, Any]) -> None:
    codes = Authenticator.objects.select_for_update().filter(user=user, type=Type.RECOVERY_CODES).first()
    stored = codes.data.get("digests", []) if codes is not None else []
    used = recovery.match(code, stored)
    if used is None or not has_factor(user):
        raise FactorNotValid()
    codes.data = {**codes.data, "digests": [digest for digest in stored if digest != used]}
    codes.last_used_at = timezone.now()
    codes.save(update_fields=["data", "last_used_at"])
    events.record(user, UserEvent.Type.RECOVERY_CODE_USED, extra={"method": "recovery_codes"}, context=context)


def _passkey_verify(user: User | None, credential: Any, *, kind: str) -> User:
    """The passkey `credential` comes from, of `user` (None: anyone's that may log in), checked
    against its live challenge of `kind` (used up, whatever the outcome), its counter moved on;
    its user."""
    challenge = challenge_use(credential, kind=kind, user=user)
    with transaction.atomic():
        return _passkey_check(user, credential, challenge)


def _passkey_check(user: User | None, credential: Any, challenge: str) -> User:
    passkeys_of = Authenticator.objects.select_for_update().filter(type=Type.PASSKEY)
    if user is None:
        passkeys_of = passkeys_of.filter(user__in=User.objects.may_log_in())
    else:
        passkeys_of = passkeys_of.filter(user=user)
    passkey = passkeys_of.filter(credential_id=passkeys.credential_id_of(credential)).first()
    if passkey is None:
        raise FactorNotValid()
    try:
        count = passkeys.verify_assertion(
            credential, challenge=challenge, public_key=passkey.data["public_key"],
            sign_count=passkey.data.get("sign_count", 0), user_verification=user is None)
    except PasskeyRefused as exc:
        if "sign count" in str(exc):
            logger.warning("Passkey %s of user %s: its sign counter went back (%s); a cloned authenticator?",
                           passkey.pk, passkey.user_id, exc)
        raise FactorNotValid()
    passkey.data = {**passkey.data, "sign_count": count}
    passkey.last_used_at = timezone.now()
    passkey.save(update_fields=["data", "last_used_at"])
    return passkey.user


# --- Login: the password, then a factor ----------------------------------------------------------


def mfa_login_begin(*, user: User) -> dict[str, Any]:
    """The password of `user` was right and they have a factor: a `mfa_token` for the second step
    (single-use, MFA_TOKEN_SECONDS, bound to this password), the `methods`, and with passkeys the
    options to answer with one (`passkey`)."""
    token = secrets.token_urlsafe(32)
    MfaChallenge.objects.create(
        kind=MfaChallenge.Kind.LOGIN, user=user, token_digest=keys.digest(token, purpose="mfa_token"),
        password_fingerprint=password_fingerprint(user),
        expires_at=timezone.now() + timedelta(seconds=MFA_TOKEN_SECONDS))
    stage = {"mfa_token": token, "methods": methods_of(user)}
    if (options := assertion_options(user=user)) is not None:
        stage["passkey"] = options
    return stage


def _login_stage(mfa_token: Any) -> Any:
    digest = keys.digest(mfa_token, purpose="mfa_token") if isinstance(mfa_token, str) else ""
    return MfaChallenge.objects.live().filter(kind=MfaChallenge.Kind.LOGIN, token_digest=digest)


def mfa_login_user(*, mfa_token: Any) -> User:
    """The user a live `mfa_token` is of, while their password is the one it followed."""
    stage = _login_stage(mfa_token).select_related("user").first()
    user = stage.user if stage is not None else None
    if user is None or not user.may_log_in or password_fingerprint(user) != stage.password_fingerprint:
        raise MfaTokenNotValid()
    return user


def mfa_login_complete(*, mfa_token: str, code: str | None = None, credential: Any = None,
                       client: Mapping[str, Any] | None = None) -> tuple[User, list[str]]:
    """The second step: the factor checked, the token used up (once, whatever the concurrency);
    the user and the token's `amr`."""
    user = mfa_login_user(mfa_token=mfa_token)
    method = factor_verify(user=user, code=code, credential=credential, client=client)
    if not _login_stage(mfa_token).filter(user=user).delete()[0]:
        raise MfaTokenNotValid()  # another request used it meanwhile
    return user, [AMR_PASSWORD, method]


def passkey_login_options() -> dict[str, Any]:
    """Options for `navigator.credentials.get()` with any passkey of this site (discoverable, the
    person verified): a login with no username or password."""
    options, challenge = passkeys.assertion_options(allow=None)
    challenge_new(kind=MfaChallenge.Kind.PASSKEY_LOGIN, user=None, challenge=challenge)
    return options


def passkey_login(*, credential: Any) -> User:
    """The user whose passkey answered `passkey_login_options`, if they may log in."""
    return _passkey_verify(None, credential, kind=MfaChallenge.Kind.PASSKEY_LOGIN)


def mfa_check_cost(*, user: User) -> None:
    """The reads and the work of a check, for a refusal that must take as long as one (a locked
    account answers as slowly as an open one); changes nothing."""
    for factor in Authenticator.objects.filter(user=user, type=Type.TOTP, confirmed_at__isnull=False):
        secret = keys.decrypt(factor.data.get("secret", ""))
        if secret is not None:
            totp.step_of(secret, "000000")


def challenges_prune() -> int:
    """Delete expired challenges and login stages (the Celery worker runs this on a timer)."""
    return MfaChallenge.objects.filter(expires_at__lte=timezone.now()).delete()[0]
