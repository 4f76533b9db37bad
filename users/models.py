import re

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models import Value
from django.db.models.functions import Lower
from django.db.models.lookups import Exact

MAX_USER_ID = 2**63 - 1  # a bigint primary key
# Only the canonical decimal form names a user: "05", "+5" or "٥" would be second names of one.
_CANONICAL_ID = re.compile(r"[1-9][0-9]{0,18}")


def user_id_from(value: str) -> int | None:
    """The id `value` names, or None for one that cannot exist; the length is checked before int()."""
    if not _CANONICAL_ID.fullmatch(value) or int(value) > MAX_USER_ID:
        return None
    return int(value)


class UserQuerySet(models.QuerySet):
    def iexact(self, field: str, value: str) -> "UserQuerySet":
        """Rows whose `field` equals `value` whatever the case, compared as the Lower() constraints do."""
        return self.filter(Exact(Lower(field), Lower(Value(value))))

    def alive(self) -> "UserQuerySet":
        return self.filter(deleted_at__isnull=True)

    def deleted(self) -> "UserQuerySet":
        return self.filter(deleted_at__isnull=False)


class UserManager(DjangoUserManager.from_queryset(UserQuerySet)):
    """Unfiltered on purpose: the admin and uniqueness checks must see deleted users too."""

    def get_by_natural_key(self, username: str) -> "User":
        """Login (API and admin) finds "Ada" as "ada" and "ａｄａ": uniqueness ignores case too."""
        return self.iexact(self.model.USERNAME_FIELD, self.model.normalize_username(username)).get()


class User(AbstractUser):
    email = models.EmailField("email address")
    email_verified = models.BooleanField(default=False)
    bio = models.TextField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = UserManager()

    class Meta(AbstractUser.Meta):
        db_table = "user"
        constraints = [
            models.UniqueConstraint(
                Lower("username"),
                name="user_username_ci_unique",
                violation_error_message="A user with that username already exists.",
            ),
            models.UniqueConstraint(
                Lower("email"),
                name="user_email_ci_unique",
                violation_error_message="A user with that email already exists.",
            ),
        ]

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


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

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        SKIPPED = "skipped"  # no longer wanted: the user was deleted, or the address changed
        FAILED = "failed"  # the mail server refused the address for good

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    to = models.EmailField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="outbox_pending_idx", condition=models.Q(status="pending"))
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} email to user {self.user_id} ({self.status})"
