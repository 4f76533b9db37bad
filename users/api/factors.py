"""Second factors under /api/v1/auth/mfa/ and /api/v1/auth/passkeys/: set them up, remove them, and
log in with them. Thin: validate, call users/accounts (factors, mfa), answer.

Every change to the factors needs the password, and the second factor of an account that has one
(`proven`); a wrong factor counts under RATE_LIMIT_MFA, per account and per client, and past it
the right one is refused too (429)."""
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from sidus.http.exception_handler import Conflict
from sidus.http.openapi import DETAIL_ERROR, RETRY_AFTER, api_responses
from users import accounts
from users.accounts.mfa import AMR_PASSKEY
from users.api import examples
from users.api.accounts import AccountView, AnonymousView, proven
from users.api.factor_serializers import (
    WEBAUTHN_OPTIONS,
    CodeSerializer,
    CredentialSerializer,
    FactorsSerializer,
    MfaAuthenticateSerializer,
    PasskeyAddedSerializer,
    PasskeyAddSerializer,
    PasskeyNameSerializer,
    PasskeySerializer,
    RecoveryCodesSerializer,
    TotpSetupSerializer,
)
from users.api.serializers import FACTOR_INVALID, FACTOR_NOT_VALID, CurrentPasswordSerializer
from users.auth.factors import factor_attempt
from users.auth.tokens import TokenPairSerializer, client_of, token_pair
from users.models import User

MFA_TOKEN_NOT_VALID = "This login has expired or was used: log in with the password again."
_CONFLICT = (DETAIL_ERROR, "The factors are not in the state this needs (the detail says which).")
_OPTIONS = OpenApiResponse(WEBAUTHN_OPTIONS, description="The options, whose challenge works once, for 5 minutes.")


def _conflicts(service: Any, /, **kwargs: Any) -> Any:
    try:
        return service(**kwargs)
    except accounts.FactorConflict as exc:
        raise Conflict(str(exc))


def _checked(request: Request, user: User | None, field: str, call: Any, /, **kwargs: Any) -> Any:
    """`call` a service that checks a factor of `user` (None: not known yet) as `factor_attempt`
    does (429 past RATE_LIMIT_MFA); a wrong factor is a 400 naming `field`, factors in another state
    than it needs a 409."""
    try:
        return factor_attempt(request, user, call, **kwargs)
    except accounts.FactorNotValid:
        raise ValidationError({field: [FACTOR_NOT_VALID]}, code=FACTOR_INVALID)
    except accounts.FactorConflict as exc:
        raise Conflict(str(exc))


class _FactorsView(AccountView):
    permission_classes = [IsAuthenticated]
    rate_limit = "factors"


class FactorsView(_FactorsView):
    @extend_schema(summary="My second factors", operation_id="auth_mfa_list", parameters=[RETRY_AFTER],
                   description="The authenticator app (on or off), passkeys (name, created, last used) and how "
                               "many recovery codes are left. Never a secret.",
                   responses=api_responses({200: FactorsSerializer}, 401, 429))
    def get(self, request: Request) -> Response:
        return Response(FactorsSerializer(accounts.factors_of(user=request.user)).data)


class TotpView(_FactorsView):
    @extend_schema(summary="Set up an authenticator app", operation_id="auth_mfa_totp_begin",
                   request=CurrentPasswordSerializer, parameters=[RETRY_AFTER], examples=[examples.TOTP_BEGIN],
                   description="A new secret, shown this once, for an app (as text, an otpauth:// URI and a QR "
                               "code). Not on until POST /auth/mfa/totp/confirm/ with its first code.",
                   responses=api_responses({200: TotpSetupSerializer}, 400, 401, 413, 415, 429, own={409: _CONFLICT}))
    def post(self, request: Request) -> Response:
        proven(request, CurrentPasswordSerializer)
        return Response(_conflicts(accounts.totp_begin, user=request.user))

    @extend_schema(summary="Turn the authenticator app off", operation_id="auth_mfa_totp_disable",
                   request=CurrentPasswordSerializer, parameters=[RETRY_AFTER], examples=[examples.TOTP_DISABLE],
                   description="Needs the password and a code (or a recovery code, or a passkey). With no passkey "
                               "left, the recovery codes go too and the account needs its password alone.",
                   responses=api_responses({204: None}, 400, 401, 413, 415, 429, own={409: _CONFLICT}))
    def delete(self, request: Request) -> Response:
        proven(request, CurrentPasswordSerializer)
        _conflicts(accounts.totp_disable, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TotpConfirmView(_FactorsView):
    @extend_schema(summary="Turn the authenticator app on", operation_id="auth_mfa_totp_confirm",
                   request=CodeSerializer, parameters=[RETRY_AFTER], examples=[examples.TOTP_CONFIRM],
                   description="The app's first code proves it holds the secret: from now on the account needs "
                               "a second factor at login and before every sensitive change. Answers ten recovery "
                               "codes, shown this once.",
                   responses=api_responses({200: RecoveryCodesSerializer}, 400, 401, 413, 415, 429,
                                           own={409: _CONFLICT}))
    def post(self, request: Request) -> Response:
        serializer = CodeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        codes = _checked(request, request.user, "code", accounts.totp_confirm, user=request.user,
                         code=serializer.validated_data["code"])
        return Response({"recovery_codes": codes})


class RecoveryCodesView(_FactorsView):
    @extend_schema(summary="New recovery codes", operation_id="auth_mfa_recovery_codes",
                   request=CurrentPasswordSerializer, parameters=[RETRY_AFTER], examples=[examples.RECOVERY_CODES],
                   description="Ten new codes, shown this once; the old ones stop working.",
                   responses=api_responses({200: RecoveryCodesSerializer}, 400, 401, 413, 415, 429,
                                           own={409: _CONFLICT}))
    def post(self, request: Request) -> Response:
        proven(request, CurrentPasswordSerializer)
        return Response({"recovery_codes": _conflicts(accounts.recovery_codes_regenerate, user=request.user)})


class MfaAuthenticateView(AnonymousView):
    rate_limit = "login"

    @extend_schema(summary="Log in: the second factor", operation_id="auth_mfa_authenticate",
                   request=MfaAuthenticateSerializer, parameters=[RETRY_AFTER], auth=[],
                   examples=[examples.MFA_AUTHENTICATE],
                   description="After POST /auth/token/ answered 401 `mfa_required`: its `mfa_token` with one "
                               "factor. A token pair whose `amr` is [\"pwd\", \"otp\"] or [\"pwd\", \"hwk\"]. The "
                               "mfa_token works once, for 5 minutes, while the password is the same.",
                   responses=api_responses({200: TokenPairSerializer}, 400, 413, 415, 429))
    def post(self, request: Request) -> Response:
        serializer = MfaAuthenticateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            user = accounts.mfa_login_user(mfa_token=data["mfa_token"])
        except accounts.MfaTokenNotValid:
            raise ValidationError({"mfa_token": [MFA_TOKEN_NOT_VALID]}, code="mfa_token_not_valid")
        field = next(name for name in ("code", "recovery_code", "credential") if data.get(name))
        try:
            user, amr = _checked(request, user, field, accounts.mfa_login_complete, mfa_token=data["mfa_token"],
                                 code=data.get("code") or data.get("recovery_code"),
                                 credential=data.get("credential"), client=client_of(request))
        except accounts.MfaTokenNotValid:
            raise ValidationError({"mfa_token": [MFA_TOKEN_NOT_VALID]}, code="mfa_token_not_valid")
        return Response(token_pair(user, request, login=True, amr=amr))


# --- Passkeys ---------------------------------------------------------------------------------------


class PasskeyRegistrationOptionsView(_FactorsView):
    @extend_schema(summary="Add a passkey: the options", operation_id="auth_passkeys_registration_options",
                   request=CurrentPasswordSerializer, parameters=[RETRY_AFTER], examples=[examples.PASSKEY_OPTIONS],
                   description="Options for navigator.credentials.create() (a discoverable credential, the person "
                               "verified); its answer goes to POST /auth/passkeys/.",
                   responses=api_responses({200: _OPTIONS}, 400, 401, 413, 415, 429))
    def post(self, request: Request) -> Response:
        proven(request, CurrentPasswordSerializer)
        return Response(accounts.passkey_registration_options(user=request.user))


class PasskeyListView(_FactorsView):
    @extend_schema(summary="Add a passkey", operation_id="auth_passkeys_add", request=PasskeyAddSerializer,
                   parameters=[RETRY_AFTER], examples=[examples.PASSKEY_ADD],
                   description="The browser's answer to the registration options, and a name. With the account's "
                               "first factor, ten recovery codes come with it, shown this once.",
                   responses=api_responses({201: PasskeyAddedSerializer}, 400, 401, 413, 415, 429,
                                           own={409: _CONFLICT}))
    def post(self, request: Request) -> Response:
        serializer = PasskeyAddSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        passkey, codes = _checked(request, request.user, "credential", accounts.passkey_add,
                                  user=request.user, **serializer.validated_data)
        body = PasskeySerializer(passkey).data
        if codes is not None:
            body["recovery_codes"] = codes
        return Response(body, status=status.HTTP_201_CREATED)


_NO_PASSKEY = (DETAIL_ERROR, "No passkey of mine has this id.")


class PasskeyDetailView(_FactorsView):
    @extend_schema(summary="Rename a passkey", operation_id="auth_passkeys_rename", request=PasskeyNameSerializer,
                   parameters=[RETRY_AFTER], examples=[examples.PASSKEY_RENAME],
                   responses=api_responses({200: PasskeySerializer}, 400, 401, 413, 415, 429, own={404: _NO_PASSKEY}))
    def patch(self, request: Request, passkey_id: int) -> Response:
        serializer = PasskeyNameSerializer(data=request.data, partial=True)  # PATCH: what is sent changes
        serializer.is_valid(raise_exception=True)
        passkey = accounts.passkey_rename(user=request.user, passkey_id=passkey_id,
                                          name=serializer.validated_data.get("name"))
        if passkey is None:
            raise NotFound()
        return Response(PasskeySerializer(passkey).data)

    @extend_schema(summary="Remove a passkey", operation_id="auth_passkeys_remove",
                   request=CurrentPasswordSerializer, parameters=[RETRY_AFTER], examples=[examples.PASSKEY_REMOVE],
                   description="Needs the password and a second factor (a code, or a passkey: this one too). "
                               "It can no longer log in or prove anything.",
                   responses=api_responses({204: None}, 400, 401, 413, 415, 429, own={404: _NO_PASSKEY}))
    def delete(self, request: Request, passkey_id: int) -> Response:
        proven(request, CurrentPasswordSerializer)
        if not accounts.passkey_remove(user=request.user, passkey_id=passkey_id):
            raise NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasskeyAssertionOptionsView(_FactorsView):
    @extend_schema(summary="Prove a passkey: the options", operation_id="auth_passkeys_assertion_options",
                   request=None, parameters=[RETRY_AFTER],
                   description="Options for navigator.credentials.get() with one of my passkeys; the answer goes "
                               "as `credential` with a sensitive change (password, address, leaving, factors).",
                   responses=api_responses({200: _OPTIONS}, 401, 429,
                                           own={409: (DETAIL_ERROR, "I have no passkey.")}))
    def post(self, request: Request) -> Response:
        options = accounts.assertion_options(user=request.user)
        if options is None:
            raise Conflict("This account has no passkey.")
        return Response(options)


class PasskeyLoginOptionsView(AnonymousView):
    rate_limit = "login"

    @extend_schema(summary="Log in with a passkey: the options", operation_id="auth_passkeys_login_options",
                   request=None, auth=[], parameters=[RETRY_AFTER],
                   description="Options for navigator.credentials.get() with any passkey of this site: no "
                               "username, no password; the person is verified by the authenticator.",
                   responses=api_responses({200: _OPTIONS}, 429))
    def post(self, request: Request) -> Response:
        return Response(accounts.passkey_login_options())


class PasskeyLoginView(AnonymousView):
    rate_limit = "login"

    @extend_schema(summary="Log in with a passkey", operation_id="auth_passkeys_login", request=CredentialSerializer,
                   auth=[], parameters=[RETRY_AFTER], examples=[examples.PASSKEY_LOGIN],
                   description="The browser's answer to the login options: a token pair whose `amr` is "
                               "[\"hwk\"]. A refused answer counts under RATE_LIMIT_MFA for the client.",
                   responses=api_responses({200: TokenPairSerializer}, 400, 413, 415, 429))
    def post(self, request: Request) -> Response:
        serializer = CredentialSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = _checked(request, None, "credential", accounts.passkey_login, **serializer.validated_data)
        return Response(token_pair(user, request, login=True, amr=[AMR_PASSKEY]))
