"""Serializers of second factors: what goes in to set one up or prove one, and what the owner sees
of them (never a secret but at the one moment it is made: an app's secret, recovery codes)."""
from typing import Any

from rest_framework import serializers

from users.models import Authenticator
from users.profile.serializers import StrictInputMixin

ONE_FACTOR = "Send one of `code`, `recovery_code` or `credential`."
_CODE_HELP = "The 6 digits the authenticator app shows."
_CREDENTIAL_HELP = "The PublicKeyCredential the browser answered the options with, as JSON (its toJSON())."


class CodeSerializer(StrictInputMixin, serializers.Serializer):
    code = serializers.CharField(max_length=32, help_text=_CODE_HELP)


class TotpSetupSerializer(serializers.Serializer):
    """Shown once: give the secret (or the URI, or the QR code) to an authenticator app."""

    secret = serializers.CharField(help_text="Base32, for typing into an app.")
    otpauth_uri = serializers.CharField(help_text="otpauth://totp/... (RFC 6238's parameters).")
    qr_svg = serializers.CharField(help_text="The URI as a QR code, an inline SVG image.")


class RecoveryCodesSerializer(serializers.Serializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(), help_text="Ten codes, each good once instead of the app or a passkey. "
        "Shown this once: keep them offline.")


class PasskeySerializer(serializers.ModelSerializer):
    class Meta:
        model = Authenticator
        fields = ("id", "name", "created_at", "last_used_at")
        read_only_fields = ("id", "created_at", "last_used_at")


class PasskeyAddedSerializer(PasskeySerializer):
    recovery_codes = serializers.ListField(
        child=serializers.CharField(), required=False, read_only=True,
        help_text="With the account's first factor only: ten recovery codes, shown this once.")

    class Meta(PasskeySerializer.Meta):
        fields = (*PasskeySerializer.Meta.fields, "recovery_codes")


class PasskeyNameSerializer(StrictInputMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the owner calls it (\"laptop\", \"phone\").")


class PasskeyAddSerializer(PasskeyNameSerializer):
    credential = serializers.JSONField(help_text=_CREDENTIAL_HELP)


class CredentialSerializer(StrictInputMixin, serializers.Serializer):
    credential = serializers.JSONField(help_text=_CREDENTIAL_HELP)


class MfaAuthenticateSerializer(StrictInputMixin, serializers.Serializer):
    mfa_token = serializers.CharField(max_length=128, help_text="From the 401 `mfa_required` of POST /auth/token/.")
    code = serializers.CharField(required=False, max_length=32, help_text=_CODE_HELP)
    recovery_code = serializers.CharField(required=False, max_length=32, help_text="One of the recovery codes.")
    credential = serializers.JSONField(required=False, help_text=_CREDENTIAL_HELP + " The options are the "
                                       "401's `passkey`.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("code", "recovery_code", "credential") if attrs.get(name)]
        if len(given) != 1:
            raise serializers.ValidationError({name: [ONE_FACTOR] for name in given or ["code"]})
        return attrs


class TotpStateSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    created_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)


class RecoveryCodesLeftSerializer(serializers.Serializer):
    left = serializers.IntegerField(help_text="Codes not used yet.")
    total = serializers.IntegerField(help_text="Codes in the set (0: none made).")


class FactorsSerializer(serializers.Serializer):
    """My second factors: never a secret."""

    totp = TotpStateSerializer()
    passkeys = PasskeySerializer(many=True)
    recovery_codes = RecoveryCodesLeftSerializer()


MFA_REQUIRED_ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "`mfa_required` for a right password and a second factor due; "
                                                  "else why the login failed."},
        "mfa_token": {"type": "string", "description": "For POST /auth/mfa/authenticate/: single use, 5 minutes."},
        "methods": {"type": "array", "items": {"type": "string", "enum": ["totp", "recovery_code", "passkey"]}},
        "passkey": {"type": "object", "description": "With passkeys: the options for navigator.credentials.get()."},
    },
    "required": ["detail"],
}
WEBAUTHN_OPTIONS = {"type": "object", "description": "PublicKeyCredential*Options as JSON (WebAuthn Level 3's "
                                                     "parseCreationOptionsFromJSON / parseRequestOptionsFromJSON)."}
