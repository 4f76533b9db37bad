"""Plain DRF serializers: validated and saved inside one thread hop by the views."""
import copy
import functools
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from users.models import EmailChange, User
from users.profile.validators import EMAIL_VALIDATORS, USERNAME_VALIDATORS

PUBLIC_FIELDS = ("id", "username", "first_name", "last_name", "bio", "date_joined")
PRIVATE_FIELDS = ("id", "username", "email", "email_verified", "first_name", "last_name", "bio", "date_joined")


class StrictInputMixin:
    """Refuse what DRF would quietly accept: keys the client may not write (is_staff, id, ...),
    and numbers where the schema says string (DRF's CharField turns 12 into "12").
    `written_elsewhere` names the keys another operation writes, and says which."""

    written_elsewhere: Mapping[str, str] = {}

    def to_internal_value(self, data: Any) -> Any:
        errors = {}
        for name, value in data.items() if isinstance(data, Mapping) else ():
            field = self.fields.get(name)
            if name in self.written_elsewhere:
                errors[name] = [self.written_elsewhere[name]]
            elif field is None or field.read_only:
                errors[name] = ["This field cannot be written."]
            elif isinstance(field, serializers.CharField) and value is not None and not isinstance(value, str):
                errors[name] = [serializers.CharField.default_error_messages["invalid"]]
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not errors:
                raise
            errors = {**exc.detail, **errors}
        if errors:
            raise serializers.ValidationError(errors)
        return validated


def _refused_anywhere(char: str) -> bool:
    """Django's username rule refuses `char` in every name: NFKC-normalized, it is not all word
    characters or @.+-_, and it is a starter (nothing before it can absorb it into a letter)."""
    normal = unicodedata.normalize("NFKC", char)
    return re.match(UnicodeUsernameValidator.regex, normal) is None and not any(map(unicodedata.combining, normal))


def username_pattern(below: int = 0x100) -> str:
    """The schema's pattern for a username, made from Django's own rule: white space and every
    character under `below` (ASCII and Latin-1) that the rule refuses anywhere. Django's `\\w` is
    Python's, Unicode-wide; JSON Schema's is ECMA's, ASCII, and its `\\p{...}` is not portable, so
    the pattern lists code points, and the field's description says the rest."""
    refused = [code for code in range(below) if _refused_anywhere(chr(code))]
    spans = [[refused[0], refused[0]]]
    for code in refused[1:]:
        if code == spans[-1][1] + 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])
    return "^[^\\s" + "".join(f"\\u{a:04X}" + (f"-\\u{b:04X}" if b > a else "") for a, b in spans) + "]+$"


@extend_schema_field({
    "type": "string", "minLength": 1, "maxLength": 150,
    "pattern": username_pattern(),
    "description": "Letters and digits of any one script, and @ . + - _ (the pattern refuses white space and "
                   "every other ASCII and Latin-1 character; the punctuation and symbols of other scripts are "
                   "refused too). NFKC-normalized (ｇｒａｃｅ is grace), unique whatever its case; reserved names "
                   "(admin, root, support, ...) and mixed-script look-alikes are refused.",
})
class UsernameField(serializers.CharField):
    """NFKC-normalized before any validator runs, as Django's own forms do ("ａｄａ" is "ada")."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 150)
        kwargs.setdefault("validators", [UnicodeUsernameValidator(), *USERNAME_VALIDATORS])
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        return User.normalize_username(super().to_internal_value(data))


class DateTimeField(serializers.DateTimeField):
    """DRF's, in Django's own time zone (TIME_ZONE) instead of the one active in the request: sidus
    activates none, and asking for the active one (an asgiref `Local`) cost more than the rest of
    representing a profile on the event loop (docs/performance.md)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", timezone.get_default_timezone())
        super().__init__(**kwargs)


class ProfileSerializer(serializers.ModelSerializer):
    """A profile as the API shows it: the model's fields as DRF maps them, dates as above."""

    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping,
                                models.DateTimeField: DateTimeField}


class UserPublicSerializer(ProfileSerializer):
    class Meta:
        model = User
        fields = PUBLIC_FIELDS
        read_only_fields = PUBLIC_FIELDS


class UserPrivateSerializer(ProfileSerializer):
    class Meta:
        model = User
        fields = PRIVATE_FIELDS
        read_only_fields = PRIVATE_FIELDS


def representation(serializer_class: type[serializers.Serializer], instance: Any) -> dict[str, Any]:
    """`serializer_class(instance).data`, from one instance of the serializer built once.

    A ModelSerializer builds its fields from the model for every instance: more than half the
    cost of representing one user, paid per answer by the edge's miss loader and lean PATCH.
    `to_representation` keeps no state between calls, so one instance serves them all.
    """
    return _representer(serializer_class).to_representation(instance)


@functools.cache
def _representer(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    return serializer_class()


class PrebuiltFieldsMixin:
    """A ModelSerializer builds its fields by reading the model for every instance, most of the
    cost of validating a small PATCH (docs/performance.md). The fields depend on the class alone,
    so they are built once per class and each instance gets fresh copies (DRF's own deepcopy,
    which re-creates each field from its arguments)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        prebuilt = cls.__dict__.get("_prebuilt_fields")
        if prebuilt is None:
            prebuilt = super().get_fields()
            cls._prebuilt_fields = prebuilt
        return copy.deepcopy(prebuilt)


class _UserWriteSerializer(PrebuiltFieldsMixin, StrictInputMixin, serializers.ModelSerializer):
    """Shared rules of create and update: a username or email is taken in any spelling that folds alike."""

    username = UsernameField()

    def _unique_ci(self, field: str, value: str) -> str:
        others = User.objects.named(field, value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists() or field == "email" and EmailChange.objects.reserving(value).exists():
            raise serializers.ValidationError(f"A user with that {field} already exists.", code="unique")
        return value

    def validate_username(self, value: str) -> str:
        return self._unique_ci("username", value)

    def validate_email(self, value: str) -> str:
        value = clean_email(value)
        if self.context.get("email_may_be_taken"):
            return value  # the caller handles a taken address without saying so (accounts.signup_request)
        return self._unique_ci("email", value)


def clean_email(value: str) -> str:
    """An address as every account keeps it: its domain lower-cased, no mixed-script look-alikes."""
    value = User.objects.normalize_email(value)
    for validator in EMAIL_VALIDATORS:
        validator(value)
    return value


def _password_min_length() -> int:
    for validator in password_validation.get_default_password_validators():
        if isinstance(validator, password_validation.MinimumLengthValidator):
            return validator.min_length
    return 1


def validate_password(password: str, *, user: User, field: str) -> None:
    """Django's password validators, their messages under `field` (a 400 naming it)."""
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({field: list(exc.messages)})


def password_field() -> serializers.CharField:
    """A new password, its rules in the schema: a length, not only digits, and the validators' own words."""
    return serializers.CharField(
        write_only=True, trim_whitespace=False, min_length=_password_min_length(), max_length=128,
        validators=[RegexValidator(r"\D", "This password is entirely numeric.", code="password_entirely_numeric")],
        help_text=" ".join(password_validation.password_validators_help_texts()),
        style={"input_type": "password"},
    )


class UserCreateSerializer(_UserWriteSerializer):
    password = password_field()

    class Meta:
        model = User
        fields = ("username", "email", "password", "first_name", "last_name", "bio")
        extra_kwargs = {"email": {"required": True, "allow_blank": False}}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = User(**{k: v for k, v in attrs.items() if k != "password"})
        validate_password(attrs["password"], user=candidate, field="password")
        return attrs


EMAIL_CHANGES_ELSEWHERE = (
    "The address changes with POST /api/v1/auth/email/change/: your password, then the link sent to the new address."
)


class UserUpdateSerializer(_UserWriteSerializer):
    written_elsewhere = {"email": EMAIL_CHANGES_ELSEWHERE}

    class Meta:
        model = User
        fields = ("username", "first_name", "last_name", "bio")
        extra_kwargs = {"username": {"required": False}}
