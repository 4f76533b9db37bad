"""The user: its ids, its names compared folded, and its row."""
import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.utils.crypto import salted_hmac

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

    def may_log_in(self) -> "UserQuerySet":
        """Alive and active: the users a token, a login or a link may act for (`User.may_log_in`)."""
        return self.alive().filter(is_active=True)

    def deleted(self) -> "UserQuerySet":
        return self.filter(deleted_at__isnull=False)


def password_fingerprint(user: Any) -> str:
    """Changes whenever the password does; reveals nothing about it (a token's `pwd`, a pending
    change of address's)."""
    return user.get_session_auth_hash()[:32]


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
    def may_log_in(self) -> bool:
        """Alive and active (`UserQuerySet.may_log_in`)."""
        return self.is_active and self.deleted_at is None

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
