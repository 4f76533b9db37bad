"""Who may be called what: django-registration's homograph and reserved-name rules.

A username is NFKC-normalized first (`User.normalize_username`, as Django's own forms do), so
"ａｄａ" is "ada"; mixed-script confusables ("аda" with a Cyrillic а) are refused, and so are
names with a special meaning (admin, root, support, www, ...), whatever their case.
"""
from django_registration.validators import (
    DEFAULT_RESERVED_NAMES,
    ReservedNameValidator,
    validate_confusables,
    validate_confusables_email,
)

from users.models import fold

_RESERVED = ReservedNameValidator(reserved_names=frozenset(DEFAULT_RESERVED_NAMES))


def validate_not_reserved(value: str) -> None:
    """django-registration compares case-sensitively; a reserved name is reserved in any spelling that folds alike."""
    _RESERVED(fold(value))


USERNAME_VALIDATORS = [validate_confusables, validate_not_reserved]
EMAIL_VALIDATORS = [validate_confusables_email]
