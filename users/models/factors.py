"""Second factors: an authenticator app, recovery codes, passkeys, and the short-lived challenges
of logging in and re-authenticating with them (users/mfa/, users/accounts/factors.py)."""
import uuid

from django.db import models
from django.utils import timezone

from users.models.user import User


class AuthenticatorQuerySet(models.QuerySet):
    def factors(self) -> "AuthenticatorQuerySet":
        """The ones that make an account need a second factor: a confirmed app, any passkey
        (recovery codes only stand in for those)."""
        return self.filter(models.Q(type=Authenticator.Type.TOTP, confirmed_at__isnull=False)
                           | models.Q(type=Authenticator.Type.PASSKEY))


class Authenticator(models.Model):
    """One factor of a user, as allauth.mfa keeps them: the kind, and in `data` what checking it
    needs, never in clear: an app's secret encrypted with MFA_ENCRYPTION_KEY (`users.mfa.keys`),
    recovery codes as keyed digests, a passkey's public key and sign counter. An app is pending
    (`confirmed_at` empty) until its first code proves the user's copy."""

    class Type(models.TextChoices):
        TOTP = "totp", "authenticator app"
        RECOVERY_CODES = "recovery_codes", "recovery codes"
        PASSKEY = "passkey", "passkey"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="authenticators")
    type = models.CharField(max_length=20, choices=Type.choices)
    name = models.CharField(max_length=100, blank=True)  # a passkey's, given by its owner
    # A passkey's credential id (base64url): how an assertion names the passkey it comes from.
    credential_id = models.CharField(max_length=1400, null=True, blank=True, unique=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = AuthenticatorQuerySet.as_manager()

    class Meta:
        db_table = "user_authenticator"
        constraints = [
            # One app and one set of recovery codes per user; any number of passkeys.
            models.UniqueConstraint(fields=["user", "type"], name="user_authenticator_one_of_a_kind",
                                    condition=models.Q(type__in=["totp", "recovery_codes"])),
        ]

    def __str__(self) -> str:  # never `data`
        return f"{self.get_type_display()} of user {self.user_id}"


class MfaChallengeQuerySet(models.QuerySet):
    def live(self) -> "MfaChallengeQuerySet":
        return self.filter(expires_at__gt=timezone.now())


class MfaChallenge(models.Model):
    """What a second step is checked against, single-use and short-lived, kept server-side: a
    login's `mfa_token` (as a digest, with the fingerprint of the password it followed), or a
    WebAuthn challenge (registration, assertion, or a login without a password). Using it deletes
    the row, so it works once whatever the concurrency; the Celery worker prunes expired ones."""

    class Kind(models.TextChoices):
        LOGIN = "login", "password checked, second factor awaited"
        REGISTER = "register", "passkey registration"
        ASSERT = "assert", "passkey assertion of a known user"
        PASSKEY_LOGIN = "passkey_login", "login with a passkey alone"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    user = models.ForeignKey(User, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    token_digest = models.CharField(max_length=64, null=True, blank=True, unique=True)
    challenge = models.CharField(max_length=128, null=True, blank=True, unique=True)  # base64url
    password_fingerprint = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(db_index=True)

    objects = MfaChallengeQuerySet.as_manager()

    class Meta:
        db_table = "user_mfa_challenge"

    def __str__(self) -> str:
        return f"{self.kind} challenge {self.pk}"
