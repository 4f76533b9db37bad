"""Serializers of the account lifecycle: password change and reset, email verification, leaving.

Names and shapes follow djoser (`current_password`, `new_password`, `uid`, `token`). Every check
that needs the database runs in the view's one thread hop, with the rest of validation.
"""
from typing import Any

from rest_framework import serializers

from users import links
from users.serializers import StrictInputMixin, password_field, validate_password

INVALID_LINK = "The link is invalid or has expired."


class CurrentPasswordSerializer(StrictInputMixin, serializers.Serializer):
    """The caller proves they know the password (context["user"]); DELETE /users/me/."""

    current_password = serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=128, style={"input_type": "password"}
    )

    def validate_current_password(self, value: str) -> str:
        if not self.context["user"].check_password(value):
            raise serializers.ValidationError("The password is not correct.", code="invalid_password")
        return value


class PasswordChangeSerializer(CurrentPasswordSerializer):
    new_password = password_field()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        validate_password(attrs["new_password"], user=self.context["user"], field="new_password")
        return attrs


class PasswordResetSerializer(StrictInputMixin, serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class _LinkSerializer(StrictInputMixin, serializers.Serializer):
    """The uid and token of an emailed link; `validated_data["user"]` is the user it names."""

    token_generator: Any = None

    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=128)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = links.user_from_uid(attrs["uid"])
        if user is None:
            raise serializers.ValidationError({"uid": [INVALID_LINK]}, code="invalid_link")
        if not self.token_generator.check_token(user, attrs["token"]):
            raise serializers.ValidationError({"token": [INVALID_LINK]}, code="invalid_link")
        attrs["user"] = user
        return attrs


class PasswordResetLinkSerializer(_LinkSerializer):
    """A reset link alone (the page checks it before it shows its form)."""

    token_generator = links.password_reset_token


class PasswordResetConfirmSerializer(PasswordResetLinkSerializer):
    new_password = password_field()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        validate_password(attrs["new_password"], user=attrs["user"], field="new_password")
        return attrs


class EmailVerifySerializer(_LinkSerializer):
    token_generator = links.email_verification_token


class SignupConfirmSerializer(StrictInputMixin, serializers.Serializer):
    """The token of an emailed signup link; `validated_data["signup"]` is the signup it names."""

    token = serializers.CharField(max_length=256)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        signup = links.signup_from_token(attrs["token"])
        if signup is None:
            raise serializers.ValidationError({"token": [INVALID_LINK]}, code="invalid_link")
        return {"signup": signup}


class DetailSerializer(serializers.Serializer):
    """A 202's body (documentation only)."""

    detail = serializers.CharField()
