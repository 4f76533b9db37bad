import json
import re
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

MAX_USER_ID = 2**63 - 1  # a bigint primary key
# Only the canonical decimal form names a user: "05", "+5" or "٥" would be second names of one.
_CANONICAL_ID = re.compile(r"[1-9][0-9]{0,18}")


def user_id_from(value: str) -> int | None:
    """The id `value` names, or None for one that cannot exist; the length is checked before int()."""
    if not _CANONICAL_ID.fullmatch(value) or int(value) > MAX_USER_ID:
        return None
    return int(value)


def fold(value: str) -> str:
    """The one form in which two spellings are the same name: NFKC, case-folded, NFKC again.

    Uniqueness, lookups and rate-limit keys all compare this, computed here and stored beside the
    name, never the database's lower(): PostgreSQL folds "İ" to "i" where Python does not, and a
    limit keyed one way and a lookup done the other let one account be reached under two keys.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


# Each name compared folded, and the column that holds its folded form.
FOLDED_FIELDS = {"username": "username_folded", "email": "email_folded"}


class UserQuerySet(models.QuerySet):
    def named(self, field: str, value: str) -> "UserQuerySet":
        """Rows whose `field` ("username" or "email") is `value` in any spelling that folds alike."""
        return self.filter(**{FOLDED_FIELDS[field]: fold(value)})

    def alive(self) -> "UserQuerySet":
        return self.filter(deleted_at__isnull=True)

    def deleted(self) -> "UserQuerySet":
        return self.filter(deleted_at__isnull=False)


class UserManager(DjangoUserManager.from_queryset(UserQuerySet)):
    """Unfiltered on purpose: the admin and uniqueness checks must see deleted users too."""

    def get_by_natural_key(self, username: str) -> "User":
        """Login (API and admin) finds "Ada" as "ada" and "ａｄａ", as uniqueness compares them."""
        return self.named(self.model.USERNAME_FIELD, username).get()


class User(AbstractUser):
    email = models.EmailField("email address")
    email_verified = models.BooleanField(default=False)
    bio = models.TextField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # fold(username) and fold(email), kept by save(): what uniqueness and lookups compare.
    username_folded = models.TextField(editable=False)
    email_folded = models.TextField(editable=False)
    # Bumped by every soft delete: sessions (tokens, admin logins) begun before it stay ended
    # after a restore, as a password change ends them.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)
    # The `sequence` of this user's last event (UserEvent): numbered under this row's lock, in the
    # change's transaction, so that a user's events are numbered in commit order.
    event_sequence = models.PositiveBigIntegerField(default=0, editable=False)

    objects = UserManager()

    class Meta(AbstractUser.Meta):
        db_table = "user"
        constraints = [
            models.UniqueConstraint(
                fields=["username_folded"],
                name="user_username_folded_unique",
                violation_error_message="A user with that username already exists.",
            ),
            models.UniqueConstraint(
                fields=["email_folded"],
                condition=~models.Q(email_folded=""),  # staff may create users without an address
                name="user_email_folded_unique",
                violation_error_message="A user with that email already exists.",
            ),
        ]

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def get_session_auth_hash(self) -> str:
        """Django's session hash (admin sessions, and the tokens' fingerprint) over the password
        hash and the session epoch: either changing ends every session begun before."""
        return self._session_auth_hash()

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_auth_hash(secret)

    def _session_auth_hash(self, secret: str | None = None) -> str:
        value = json.dumps([self.password, self.session_epoch])
        return salted_hmac("sidus.users.User.session_auth_hash", value, secret=secret, algorithm="sha256").hexdigest()

    def _fold_names(self) -> None:
        for field, folded in FOLDED_FIELDS.items():
            setattr(self, folded, fold(getattr(self, field) or ""))

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saves in one transaction (the caller's, if there is one), in which users/events, from the
        pre_save and post_save signals, locks the row, reads what it was and records the user events
        of the change: whoever saves a user (API, admin, services, management commands) emits them."""
        self._fold_names()
        update_fields = kwargs.get("update_fields")
        if update_fields is None and not self._state.adding:
            # Every field but the event sequence, which only `events.RECORD` writes, under the lock.
            update_fields = kwargs["update_fields"] = [
                field.name for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "event_sequence"
            ]
        if update_fields is not None:
            folded = (FOLDED_FIELDS[field] for field in FOLDED_FIELDS if field in update_fields)
            kwargs["update_fields"] = {*update_fields, *folded}
        using = kwargs.get("using") or router.db_for_write(User, instance=self)
        with transaction.atomic(using=using, savepoint=False):
            super().save(*args, **kwargs)

    def validate_constraints(self, exclude: Any = None) -> None:
        """The admin's forms check uniqueness too: a name's folded column is checked with the name,
        and a clash is reported on the name, the field the form has."""
        self._fold_names()
        exclude = set(exclude or ())
        exclude -= {folded for field, folded in FOLDED_FIELDS.items() if field not in exclude}
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as exc:
            names = {folded: field for field, folded in FOLDED_FIELDS.items()}
            raise ValidationError({names.get(key, key): errors for key, errors in exc.error_dict.items()})


class PendingSignup(models.Model):
    """A registration waiting for its address to be confirmed, under SIGNUP_PREVENT_ENUMERATION.

    Nothing of it shows (no user, no profile, no taken username) until the link sent to the
    address is used: signing up with someone else's address tells the caller nothing, and a
    signup whose address was taken leaves no row at all.
    """

    username = models.CharField(max_length=150)
    email = models.EmailField()
    password = models.CharField(max_length=128)  # the hash, as User keeps it
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    bio = models.TextField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"pending signup {self.pk}"


class EmailChangeQuerySet(models.QuerySet):
    def pending(self) -> "EmailChangeQuerySet":
        """Neither confirmed nor cancelled: their confirm links may still work."""
        return self.filter(confirmed_at__isnull=True, cancelled_at__isnull=True)

    def reserving(self, email: str) -> "EmailChangeQuerySet":
        """The changes whose old address is `email` (in any spelling that folds alike) and may still
        come back (`services.email_change_revert`): for that long no other account may take it."""
        since = timezone.now() - timedelta(days=settings.EMAIL_CHANGE_REVERT_DAYS)
        return self.filter(old_email_folded=fold(email), confirmed_at__gte=since, reverted_at__isnull=True)


class EmailChange(models.Model):
    """A request to move an account to a new address (`services.email_change_request`).

    Nothing changes until the link sent to `new_email` is followed (`confirmed_at`); only the
    user's latest request can be, within EMAIL_CHANGE_TIMEOUT, and only while the password is the
    one it was asked with (`password_fingerprint`, never the hash) and the address still
    `old_email`. Once confirmed, the link sent to `old_email` puts it back (`reverted_at`) for
    EMAIL_CHANGE_REVERT_DAYS, whatever happened since. The links are signed ids of this row: no
    token is stored, and each works once because using it changes the row.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="email_changes")
    old_email = models.EmailField()
    old_email_folded = models.TextField(editable=False)  # fold(old_email), kept by save()
    new_email = models.EmailField()
    password_fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)  # a newer request, or staff
    reverted_at = models.DateTimeField(null=True, blank=True)

    objects = EmailChangeQuerySet.as_manager()

    class Meta:
        db_table = "user_email_change"
        indexes = [
            models.Index(fields=["user", "-created_at"], name="user_email_change_latest_idx"),
            models.Index(fields=["old_email_folded"], name="user_email_change_old_idx",
                         condition=models.Q(reverted_at__isnull=True, confirmed_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"email change {self.pk} of user {self.user_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.old_email_folded = fold(self.old_email)
        super().save(*args, **kwargs)

    @property
    def pending(self) -> bool:
        return self.confirmed_at is None and self.cancelled_at is None


class OutboxEmail(models.Model):
    """One email to send, written in the same transaction as the change that calls for it.

    It outlives a broker outage: whatever the publish after commit did, the worker's periodic
    drain sends every pending row, and the row lock plus `status` send each email once. `to` is
    the address when the row was written: a link meant for one address never goes to another.
    """

    class Kind(models.TextChoices):
        WELCOME = "welcome"  # with the link that verifies the address
        VERIFY_EMAIL = "verify_email"
        PASSWORD_RESET = "password_reset"
        PASSWORD_CHANGED = "password_changed"
        EMAIL_CHANGED = "email_changed"  # to the old address
        SIGNUP_CONFIRM = "signup_confirm"  # with the link that creates a pending signup's account
        SIGNUP_EXISTS = "signup_exists"  # to the owner of an address someone tried to sign up with
        EMAIL_CHANGE_CONFIRM = "email_change_confirm"  # to the new address, with the link that makes it the account's
        EMAIL_CHANGE_REQUESTED = "email_change_requested"  # to the current address: a change was asked for
        EMAIL_CHANGE_TAKEN = "email_change_taken"  # to the owner of an address someone asked to move to
        LOGIN_ALERT = "login_alert"  # a login from a new device and network, with the secure-account link
        ACCOUNT_SECURED = "account_secured"  # after a revert or a secure-account link: a reset link

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        # No longer wanted (the user was deleted, the address changed), or past the address's share
        # of unsolicited emails (RATE_LIMIT_EMAIL_TO_ADDRESS).
        SKIPPED = "skipped"
        FAILED = "failed"  # the mail server refused the address for good

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="emails", null=True, blank=True)
    # Set instead of `user` for SIGNUP_CONFIRM; cleared when the signup is used or expires.
    signup = models.ForeignKey(PendingSignup, on_delete=models.SET_NULL, related_name="emails", null=True, blank=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    to = models.EmailField()
    # What the email is about, for the kinds that need more than the user: {"change": id} of an
    # EmailChange, the login of an alert ({"time", "device", "network"}).
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="outbox_pending_idx", condition=models.Q(status="pending"))
        ]

    def __str__(self) -> str:
        whom = f"user {self.user_id}" if self.user_id else "a pending signup"
        return f"{self.get_kind_display()} email to {whom} ({self.status})"


class UserEvent(models.Model):
    """One change to a user, written in the change's transaction (the transactional outbox), and
    published to the broker by the relay (users/events/relay.py) once committed, in `sequence`
    order per user. The row is the event: `id` and `data` are what every delivery carries."""

    class Type(models.TextChoices):
        REGISTERED = "user.registered"
        UPDATED = "user.updated"
        EMAIL_CHANGED = "user.email_changed"
        EMAIL_VERIFIED = "user.email_verified"
        PASSWORD_CHANGED = "user.password_changed"
        DELETED = "user.deleted"
        RESTORED = "user.restored"
        LOGGED_IN = "user.logged_in"
        LOGIN_FAILED = "user.login_failed"
        LOGGED_OUT = "user.logged_out"
        SESSION_ENDED = "user.session_ended"
        EMAIL_CHANGE_REQUESTED = "user.email_change_requested"
        EMAIL_CHANGE_REVERTED = "user.email_change_reverted"
        LOGIN_ALERT_SENT = "user.login_alert_sent"
        ACCOUNT_SECURED = "user.account_secured"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No database constraint: a user's events outlive the row, should anyone remove it.
    user = models.ForeignKey(User, on_delete=models.DO_NOTHING, db_constraint=False, related_name="events")
    sequence = models.PositiveBigIntegerField()
    type = models.CharField(max_length=255, choices=Type.choices)
    time = models.DateTimeField()
    data = models.JSONField()
    # What only the user sees, in their security log (the client's IP and device, "by staff"):
    # never published, never in `data`.
    context = models.JSONField(default=dict, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(null=True, blank=True)  # not tried again before (after a failure)
    last_error = models.TextField(blank=True)
    parked_at = models.DateTimeField(null=True, blank=True)  # refused too often: waits for staff

    class Meta:
        db_table = "user_event"
        ordering = ["user", "sequence"]
        constraints = [models.UniqueConstraint(fields=["user", "sequence"], name="user_event_sequence_unique")]
        indexes = [
            models.Index(fields=["user", "sequence"], name="user_event_unpublished_idx",
                         condition=models.Q(published_at__isnull=True)),
            models.Index(fields=["time"], name="user_event_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.sequence} of user {self.user_id}"


class Session(models.Model):
    """One login: the `sid` every token of it carries, kept across refreshes. A session ends once
    (`ended_at`, and why); its tokens answer 401 from then on, on every worker within
    USER_CACHE_MAX_STALENESS (users/sessions.py).
    `refresh_jti` names its one refresh token that may still be used: a refresh swaps it under the
    row's lock, and presenting any other of the session's refresh tokens ends the session.
    Expired ones (no refresh for REFRESH_TOKEN_LIFETIME) are pruned by the Celery worker."""

    class EndReason(models.TextChoices):
        LOGOUT = "logout", _("logged out")
        REVOKED = "revoked", _("ended by the user")
        PASSWORD_CHANGE = "password_change", _("password changed")
        PASSWORD_RESET = "password_reset", _("password reset")
        ACCOUNT_DELETED = "account_deleted", _("account deleted")
        STAFF = "staff", _("ended by staff")
        REFRESH_REUSED = "refresh_reused", _("a used-up refresh token was presented")
        ACCOUNT_SECURED = "account_secured", _("the owner secured the account from their mailbox")

    id = models.UUIDField(primary_key=True, editable=False)  # the tokens' `sid`
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)  # the login, then each refresh
    ip = models.GenericIPAddressField(null=True, blank=True)  # as the rate limits see it (IPv6: its /64)
    user_agent = models.CharField(max_length=512, blank=True)
    device = models.CharField(max_length=100, blank=True)  # a label derived from the User-Agent
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=20, choices=EndReason.choices, blank=True)
    # The jti of the session's live refresh token; blank for a session begun before it was kept,
    # whose next refresh sets it.
    refresh_jti = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        db_table = "user_session"
        indexes = [
            # A user's live sessions, newest activity first (the API's list, the admin's counts).
            models.Index(F("user"), F("last_seen_at").desc(), name="user_session_live_idx",
                         condition=models.Q(ended_at__isnull=True)),
            # What each worker reads of the sessions ended lately (users/sessions.py).
            models.Index(fields=["ended_at"], name="user_session_ended_idx",
                         condition=models.Q(ended_at__isnull=False)),
            models.Index(fields=["last_seen_at"], name="user_session_seen_idx"),  # the pruning
        ]

    def __str__(self) -> str:
        return f"session {self.pk} of user {self.user_id}"


class ConsumedEvent(models.Model):
    """An event `manage.py consume_events` handled, per queue: a redelivery of it is skipped."""

    queue = models.CharField(max_length=255)
    event_id = models.UUIDField()
    handled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "consumed_event"
        constraints = [models.UniqueConstraint(fields=["queue", "event_id"], name="consumed_event_unique")]


class UnsentInvalidation(models.Model):
    """A user whose change committed while its writer could not reach Redis (users/cache/unsent.py):
    every worker stops reading them from L2 and sends the invalidation itself. `version` grows with
    each failed send, so that a row is removed only by a send made after its last one."""

    user_id = models.BigIntegerField(primary_key=True)
    version = models.BigIntegerField(default=1)

    class Meta:
        db_table = "user_cache_unsent"
