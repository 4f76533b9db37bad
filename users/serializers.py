"""Plain DRF serializers: validated and saved inside one thread hop by the views."""
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from users.models import User

PUBLIC_FIELDS = ("id", "username", "first_name", "last_name", "bio", "date_joined")
PRIVATE_FIELDS = ("id", "username", "email", "first_name", "last_name", "bio", "date_joined")


class StrictFieldsMixin:
    """Reject keys the client may not write (is_staff, id, ...) instead of dropping them silently."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            refused = sorted(set(data) - writable)
            if refused:
                raise serializers.ValidationError({name: ["This field cannot be written."] for name in refused})
        return super().to_internal_value(data)


class UserPublicSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = PUBLIC_FIELDS
        read_only_fields = PUBLIC_FIELDS


class UserPrivateSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = PRIVATE_FIELDS
        read_only_fields = PRIVATE_FIELDS


class _UserWriteSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """Shared rules of create and update: uniqueness of username and email ignores case."""

    def _unique_ci(self, field: str, value: str) -> str:
        others = User.objects.filter(**{f"{field}__iexact": value})
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(f"A user with that {field} already exists.")
        return value

    def validate_username(self, value: str) -> str:
        return self._unique_ci("username", value)

    def validate_email(self, value: str) -> str:
        return self._unique_ci("email", User.objects.normalize_email(value))


class UserCreateSerializer(_UserWriteSerializer):
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)

    class Meta:
        model = User
        fields = ("username", "email", "password", "first_name", "last_name", "bio")
        extra_kwargs = {
            # Our validate_username replaces the case-sensitive UniqueValidator DRF would add.
            "username": {"validators": [UnicodeUsernameValidator()]},
            "email": {"required": True, "allow_blank": False},
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = User(**{k: v for k, v in attrs.items() if k != "password"})
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)})
        return attrs


class UserUpdateSerializer(_UserWriteSerializer):
    class Meta:
        model = User
        fields = ("username", "email", "first_name", "last_name", "bio")
        extra_kwargs = {
            "username": {"validators": [UnicodeUsernameValidator()]},
            "email": {"allow_blank": False},
        }
