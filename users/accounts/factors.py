"""Second factors of an account: setting them up and removing them. Each change is an event of
its user (the method only, never a secret) and in their security log; the caller proved the
password and, where the account has a factor already, that factor (users/accounts/mfa.py).

Recovery codes come with the first factor and go with the last: they stand in for the others."""
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from users import events
from users.accounts.errors import FactorConflict, FactorNotValid
from users.mail.outbox import email_queue
from users.mfa import keys, passkeys, recovery, totp
from users.mfa.passkeys import CHALLENGE_SECONDS, PasskeyRefused
from users.models import Authenticator, MfaChallenge, OutboxEmail, User, UserEvent

Type = Authenticator.Type


def _event(user: User, type: str, method: str) -> None:
    events.record(user, type, extra={"method": method})


def _added(user: User, factor: Authenticator, words: str) -> None:
    """The owner's mailbox hears of a new factor, with a link that takes the account back: every
    session ends, and this factor and any added after it go (`accounts.account_secure`)."""
    email_queue(kind=OutboxEmail.Kind.FACTOR_ADDED, user=user,
                context={"factor": words, "since": factor.created_at.isoformat()})


def _new_recovery_codes(user: User) -> list[str]:
    """A new set: the old one stops working."""
    codes = recovery.new_codes()
    Authenticator.objects.update_or_create(user=user, type=Type.RECOVERY_CODES, defaults={
        "data": {"digests": recovery.digests(codes), "total": len(codes)}, "created_at": timezone.now(),
        "confirmed_at": timezone.now(), "last_used_at": None})
    _event(user, UserEvent.Type.RECOVERY_CODES_GENERATED, "recovery_codes")
    return codes


def has_factor(user: User) -> bool:
    """Whether `user` needs a second factor: a confirmed app or a passkey."""
    return Authenticator.objects.factors().filter(user=user).exists()


def _drop_recovery_codes_if_last(user: User) -> None:
    if not has_factor(user):
        Authenticator.objects.filter(user=user, type=Type.RECOVERY_CODES).delete()


def totp_begin(*, user: User) -> dict[str, str]:
    """A new secret for an authenticator app, pending until `totp_confirm` (an earlier pending one is
    dropped): {secret, otpauth_uri, qr_svg}."""
    secret = totp.new_secret()
    with transaction.atomic():
        if Authenticator.objects.filter(user=user, type=Type.TOTP, confirmed_at__isnull=False).exists():
            raise FactorConflict("An authenticator app is set up already: turn it off first.")
        Authenticator.objects.filter(user=user, type=Type.TOTP).delete()
        Authenticator.objects.create(user=user, type=Type.TOTP, data={"secret": keys.encrypt(secret)})
    uri, svg = totp.provisioning(secret, account=user.get_username())
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": svg}


def totp_confirm(*, user: User, code: str) -> list[str]:
    """The app's first code turns it on; a new set of recovery codes, shown this once."""
    with transaction.atomic():
        app = (Authenticator.objects.select_for_update()
               .filter(user=user, type=Type.TOTP, confirmed_at__isnull=True).first())
        if app is None:
            raise FactorConflict("No authenticator app is being set up: start with POST /api/v1/auth/mfa/totp/.")
        secret = keys.decrypt(app.data.get("secret", ""))
        step = totp.step_of(secret, code) if secret is not None else None
        if step is None:
            raise FactorNotValid()
        app.confirmed_at = app.last_used_at = timezone.now()
        app.data = {**app.data, "last_step": step}
        app.save(update_fields=["confirmed_at", "last_used_at", "data"])
        _event(user, UserEvent.Type.MFA_ENABLED, "totp")
        _added(user, app, "an authenticator app")
        return _new_recovery_codes(user)


def totp_disable(*, user: User) -> None:
    with transaction.atomic():
        if not Authenticator.objects.filter(user=user, type=Type.TOTP).delete()[0]:
            raise FactorConflict("No authenticator app is set up.")
        _drop_recovery_codes_if_last(user)
        _event(user, UserEvent.Type.MFA_DISABLED, "totp")


def recovery_codes_regenerate(*, user: User) -> list[str]:
    with transaction.atomic():
        if not has_factor(user):
            raise FactorConflict("Recovery codes come with a second factor: set one up first.")
        return _new_recovery_codes(user)


def passkey_registration_options(*, user: User) -> dict[str, Any]:
    """Options for the browser's `navigator.credentials.create()`; their challenge works once, for
    CHALLENGE_SECONDS."""
    exclude = list(Authenticator.objects.filter(user=user, type=Type.PASSKEY).values_list("credential_id", flat=True))
    handle = keys.digest(str(user.pk), purpose="user_handle")[:32].encode()
    options, challenge = passkeys.registration_options(user_handle=handle, name=user.get_username(), exclude=exclude)
    challenge_new(kind=MfaChallenge.Kind.REGISTER, user=user, challenge=challenge)
    return options


def challenge_new(*, kind: str, user: User | None, challenge: str) -> None:
    """Keep a WebAuthn ceremony's challenge for its answer, for CHALLENGE_SECONDS."""
    MfaChallenge.objects.create(kind=kind, user=user, challenge=challenge,
                                expires_at=timezone.now() + timedelta(seconds=CHALLENGE_SECONDS))


def challenge_use(credential: Any, *, kind: str, user: User | None = None) -> str:
    """The live challenge `credential` answers, of `kind` (and `user`), used up; FactorNotValid if
    there is none."""
    challenge = passkeys.challenge_of(credential)
    found = MfaChallenge.objects.live().filter(kind=kind, challenge=challenge, user=user)
    if challenge is None or not found.delete()[0]:
        raise FactorNotValid()
    return challenge


def passkey_add(*, user: User, credential: Any, name: str) -> tuple[Authenticator, list[str] | None]:
    """The passkey the browser made for the options of `passkey_registration_options`; with the
    account's first factor, a set of recovery codes (else None)."""
    challenge = challenge_use(credential, kind=MfaChallenge.Kind.REGISTER, user=user)  # used up, whatever comes
    try:
        made = passkeys.verify_registration(credential, challenge=challenge)
    except PasskeyRefused:
        raise FactorNotValid()
    with transaction.atomic():
        first = not has_factor(user)
        try:
            with transaction.atomic():
                passkey = Authenticator.objects.create(
                    user=user, type=Type.PASSKEY, name=name, credential_id=made.credential_id,
                    confirmed_at=timezone.now(), data={"public_key": made.public_key, "sign_count": made.sign_count,
                                                       "transports": made.transports, "aaguid": made.aaguid})
        except IntegrityError:
            raise FactorConflict("This passkey is registered already.")
        _event(user, UserEvent.Type.PASSKEY_ADDED, "passkey")
        _added(user, passkey, "a passkey")  # not its name: words a thief chose reach no mailbox
        return passkey, _new_recovery_codes(user) if first else None


def passkey_rename(*, user: User, passkey_id: int, name: str | None) -> Authenticator | None:
    """The passkey of `user` with this id, named `name` (None: as it was); None if there is none."""
    passkey = Authenticator.objects.filter(user=user, type=Type.PASSKEY, pk=passkey_id).first()
    if passkey is not None and name is not None:
        passkey.name = name
        passkey.save(update_fields=["name"])
    return passkey


def passkey_remove(*, user: User, passkey_id: int) -> bool:
    with transaction.atomic():
        if not Authenticator.objects.filter(user=user, type=Type.PASSKEY, pk=passkey_id).delete()[0]:
            return False
        _drop_recovery_codes_if_last(user)
        _event(user, UserEvent.Type.PASSKEY_REMOVED, "passkey")
    return True


def factors_remove(*, user: User, since: Any = None) -> int:
    """Remove the factors of `user` (added at or after `since`, if given), and recovery codes made
    since then or left with no factor: what a thief added to keep the owner out goes when the owner
    takes the account back from their mailbox; staff remove them all. How many factors went."""
    removed = 0
    with transaction.atomic():
        found = Authenticator.objects.filter(user=user).exclude(type=Type.RECOVERY_CODES)
        for factor in found.filter(created_at__gte=since) if since is not None else found:
            factor.delete()
            removed += 1
            if factor.confirmed_at is not None:
                _event(user, UserEvent.Type.PASSKEY_REMOVED if factor.type == Type.PASSKEY
                       else UserEvent.Type.MFA_DISABLED, factor.type)
        codes = Authenticator.objects.filter(user=user, type=Type.RECOVERY_CODES)
        if since is not None:
            codes.filter(created_at__gte=since).delete()
        _drop_recovery_codes_if_last(user)
    return removed


def factors_remove_by_staff(*, user_ids: Iterable[int]) -> int:
    """Staff's (the admin's action): every factor of these users, logged as staff's."""
    with transaction.atomic(), events.by_staff():
        users = User.objects.select_for_update().filter(pk__in=list(user_ids))
        return sum(factors_remove(user=user) for user in users)


def factors_of(*, user: User) -> dict[str, Any]:
    """What the owner sees of their factors: never a secret."""
    found = list(Authenticator.objects.filter(user=user).order_by("created_at", "pk"))
    app = next((f for f in found if f.type == Type.TOTP and f.confirmed_at is not None), None)
    codes = next((f for f in found if f.type == Type.RECOVERY_CODES), None)
    return {
        "totp": {"enabled": app is not None, "created_at": app and app.created_at,
                 "last_used_at": app and app.last_used_at},
        "passkeys": [f for f in found if f.type == Type.PASSKEY],
        "recovery_codes": {"left": len(codes.data.get("digests", [])) if codes else 0,
                           "total": codes.data.get("total", 0) if codes else 0},
    }
