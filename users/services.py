"""The rules of changing a user. Views, the admin and tasks call these; nothing else writes users."""
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from users.models import User

# Database constraints behind the serializers' checks: a concurrent writer can still trip them.
_CONSTRAINT_FIELDS = {
    "user_username_ci_unique": "username",
    "user_username_key": "username",
    "user_email_ci_unique": "email",
}

UPDATABLE_FIELDS = frozenset({"username", "email", "first_name", "last_name", "bio"})


def _raise_for_integrity_error(exc: IntegrityError) -> None:
    constraint = getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None)
    field = _CONSTRAINT_FIELDS.get(constraint or "")
    if field is None:
        raise exc
    raise ValidationError({field: [f"A user with that {field} already exists."]}) from exc


def user_create(
    *,
    username: str,
    email: str,
    password: str,
    first_name: str = "",
    last_name: str = "",
    bio: str = "",
) -> User:
    user = User(username=username, email=email, first_name=first_name, last_name=last_name, bio=bio)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        _raise_for_integrity_error(exc)
    return user


def user_update(*, user: User, data: dict[str, Any]) -> User:
    """Write only the changed columns, so a concurrent soft delete is never undone."""
    unknown = set(data) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    for field, value in data.items():
        setattr(user, field, value)
    try:
        with transaction.atomic():
            user.save(update_fields=[*data, "updated_at"])
    except IntegrityError as exc:
        _raise_for_integrity_error(exc)
    return user


def user_soft_delete(*, user: User) -> User:
    """Keep the row (and its username and email taken); the user can no longer log in or be seen."""
    if user.deleted_at is None:
        user.deleted_at = timezone.now()
    user.is_active = False
    with transaction.atomic():
        user.save(update_fields=["deleted_at", "is_active", "updated_at"])
    return user


def user_restore(*, user: User) -> User:
    user.deleted_at = None
    user.is_active = True
    with transaction.atomic():
        user.save(update_fields=["deleted_at", "is_active", "updated_at"])
    return user
