"""Serializers of the account lifecycle: password change and reset, email verification, leaving.

Names and shapes follow djoser (`current_password`, `new_password`, `uid`, `token`). Every check
that needs the database runs in the view's one thread hop, with the rest of validation.
"""
from typing import Any

from rest_framework import serializers

from users import accounts
from users.accounts.mfa import AMR_PASSWORD
from users.auth.factors import factor_attempt
from users.auth.tokens import client_of
from users.mail import links
from users.models import Session, UserEvent, fold
from users.profile.serializers import StrictInputMixin, clean_email, password_field, validate_password

INVALID_LINK = "The link is invalid or has expired."


FACTOR_REQUIRED = ("This account has a second factor: send `code` (from its authenticator app, or a recovery "
                   "code) or `credential` (a passkey's answer to POST /api/v1/auth/passkeys/assertion/options/).")
FACTOR_NOT_VALID = "The second factor is not right: a wrong, used or expired code, or a refused passkey."
FACTOR_INVALID = "mfa_invalid"  # the error code of a wrong factor, which RATE_LIMIT_MFA counts


class FactorSerializer(StrictInputMixin, serializers.Serializer):
    """The caller (context["request"]) proves the second factor of the account (context["user"]),
    if it has one, under RATE_LIMIT_MFA (`factor_attempt`: past it a 429); checked in `validate`,
    after every other check, so that a request refused for anything else uses up no code.
    `validated_data["amr"]` says what was proved (RFC 8176)."""

    code = serializers.CharField(
        required=False, max_length=32, help_text="For an account with a second factor: the 6 digits its "
        "authenticator app shows, or one of its recovery codes.")
    credential = serializers.JSONField(
        required=False, help_text="For an account with a passkey, instead of `code`: the PublicKeyCredential "
        "(as JSON) answering the options of POST /api/v1/auth/passkeys/assertion/options/.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = self.validate_input(attrs)
        user = self.context["user"]
        proved = [AMR_PASSWORD] if "current_password" in self.fields else []
        if accounts.has_factor(user):
            try:
                request = self.context["request"]
                proved.append(factor_attempt(request, user, accounts.factor_verify, user=user, code=attrs.get("code"),
                                             credential=attrs.get("credential"), client=client_of(request)))
            except accounts.FactorRequired:
                raise serializers.ValidationError({"code": [FACTOR_REQUIRED]}, code="mfa_required")
            except accounts.FactorNotValid:
                field = "credential" if attrs.get("credential") else "code"
                raise serializers.ValidationError({field: [FACTOR_NOT_VALID]}, code=FACTOR_INVALID)
        attrs["amr"] = proved
        return attrs

    def validate_input(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The checks of a subclass's own fields."""
        return attrs


class CurrentPasswordSerializer(FactorSerializer):
    """The caller proves it is the person: the password (context["user"]), and the second factor of
    an account that has one. DELETE /users/me/, and every change that could take the account."""

    current_password = serializers.CharField(
        write_only=True, trim_whitespace=False, max_length=128, style={"input_type": "password"}
    )

    def validate_current_password(self, value: str) -> str:
        if not self.context["user"].check_password(value):
            raise serializers.ValidationError("The password is not correct.", code="invalid_password")
        return value


class PasswordChangeSerializer(CurrentPasswordSerializer):
    new_password = password_field()

    def validate_input(self, attrs: dict[str, Any]) -> dict[str, Any]:
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


class _SignedLinkSerializer(StrictInputMixin, serializers.Serializer):
    """The token of an emailed link signed by users.mail.links; `validated_data[names]` is what it
    names (`load` returns None for a forged, expired or unknown one). Whether the link may still
    do its work is the service's to say (`accounts.LinkNotValid`)."""

    names: str
    load: Any

    token = serializers.CharField(max_length=256)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        found = type(self).load(attrs["token"])
        if found is None:
            raise serializers.ValidationError({"token": [INVALID_LINK]}, code="invalid_link")
        return {self.names: found}


class SignupConfirmSerializer(_SignedLinkSerializer):
    names, load = "signup", staticmethod(links.signup_from_token)


class EmailChangeConfirmSerializer(_SignedLinkSerializer):
    names, load = "change", staticmethod(lambda token: links.email_change_from_token(token, "confirm"))


class EmailChangeRevertSerializer(_SignedLinkSerializer):
    names, load = "change", staticmethod(lambda token: links.email_change_from_token(token, "revert"))


class SecureAccountSerializer(_SignedLinkSerializer):
    names, load = "account", staticmethod(links.secure_account_from_token)


class EmailChangeSerializer(CurrentPasswordSerializer):
    """A new address for the caller's account, with the password (context["user"])."""

    new_email = serializers.EmailField(max_length=254)

    def validate_new_email(self, value: str) -> str:
        value = clean_email(value)
        if fold(value) == fold(self.context["user"].email):
            raise serializers.ValidationError("This is the account's address already.", code="unchanged")
        return value


class DetailSerializer(serializers.Serializer):
    """A 202's body (documentation only)."""

    detail = serializers.CharField()


class SessionSerializer(serializers.ModelSerializer):
    """A live session as its owner sees it; `current` marks the one the request's token is of."""

    current = serializers.SerializerMethodField()

    class Meta:
        model = Session
        fields = ("id", "created_at", "last_seen_at", "ip", "device", "user_agent", "current")
        read_only_fields = fields

    def get_current(self, session: Session) -> bool:
        return session.pk == self.context.get("session_id")


class SecurityEventSerializer(serializers.ModelSerializer):
    """One line of a user's own security log: what happened, when, from where, and by whom (the
    user, staff, or for a failed login nobody known); never which staff member."""

    session = serializers.SerializerMethodField()
    reason = serializers.SerializerMethodField()
    ip = serializers.SerializerMethodField()
    device = serializers.SerializerMethodField()
    by = serializers.SerializerMethodField()

    class Meta:
        model = UserEvent
        fields = ("id", "type", "time", "session", "reason", "ip", "device", "by")
        read_only_fields = fields

    def get_session(self, event: UserEvent) -> str | None:
        return event.data.get("session")

    def get_reason(self, event: UserEvent) -> str | None:
        return event.data.get("reason")

    def get_ip(self, event: UserEvent) -> str | None:
        return event.context.get("ip")

    def get_device(self, event: UserEvent) -> str | None:
        return event.context.get("device")

    def get_by(self, event: UserEvent) -> str | None:
        """"you", "staff", or null: a failed login or a refused second factor is anyone's."""
        if event.type in (UserEvent.Type.LOGIN_FAILED, UserEvent.Type.MFA_FAILED):
            return None
        return event.context.get("by", "you")
