"""The account lifecycle under /api/v1/auth/: password change and reset, email verification.

Thin, like users/api/views.py: validate, call a service, answer. Each view is sync, so Django runs
it in one thread hop (sidus/http/dispatch.py). Leaving is `DELETE /users/me/` in users/api/views.py.

Enumeration: a reset request answers 202 with the same body and the same work whether or not the
address belongs to someone: the lookup runs in the worker. A bad link is a 400 naming `uid`
(no such active account: ids are public anyway, in /users/{id}/) or `token`.
"""
from typing import Any

from adrf.views import APIView
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from sidus.http.dispatch import NoStoreViewMixin
from sidus.http.openapi import RETRY_AFTER, api_responses
from users import accounts
from users.api import examples
from users.api.serializers import (
    INVALID_LINK,
    DetailSerializer,
    EmailChangeConfirmSerializer,
    EmailChangeRevertSerializer,
    EmailChangeSerializer,
    EmailVerifySerializer,
    FactorSerializer,
    PasswordChangeSerializer,
    PasswordResetConfirmSerializer,
    PasswordResetSerializer,
    SecureAccountSerializer,
    SignupConfirmSerializer,
)
from users.auth.tokens import TokenPairSerializer, token_pair
from users.models import Session, fold
from users.profile.serializers import UserPrivateSerializer
from users.ratelimits import ActionThrottle, RateLimited, login_blocked_for, login_failed

RESET_ACCEPTED = "If an account has this address, a reset link is on its way."
RESEND_ACCEPTED = "If the address is not verified yet, a new link is on its way."
EMAIL_CHANGE_ACCEPTED = ("A link is on its way to the new address: the account's address changes when it is "
                         "followed. The current address keeps working until then.")
REVERTED = "The old address is the account's again. Every session has ended; a reset link is on its way to it."
SECURED = "Every session of the account has ended; a reset link is on its way to its address."


def _email_key(request: Request) -> str | None:
    """The per-address rate of password resets counts the address as the lookup compares it
    (`User.objects.named`), stripped as the serializer strips it."""
    email = request.data.get("email") if isinstance(request.data, dict) else None
    return fold(email.strip()) if isinstance(email, str) else None


class AccountView(NoStoreViewMixin, APIView):
    """A view of the account API: never stored, and rate limited per action."""

    rate_limit: str  # the action in RATE_LIMITS that every request counts against
    rate_limit_key: Any = None  # finds the value of its "key" rates in the request

    def get_throttles(self) -> list[Any]:
        return [ActionThrottle(self.rate_limit, key=self.rate_limit_key)]


def proven(request: Request, serializer_class: type[FactorSerializer], *, password_counts: bool = False) -> dict:
    """The validated body of a change only the person may make: their password, and the second
    factor of an account that has one (`FactorSerializer`: past RATE_LIMIT_MFA a 429). A wrong
    password counts as a failed login if `password_counts`."""
    username = request.user.get_username()
    if password_counts and (wait := login_blocked_for(request, username)) is not None:
        raise RateLimited(wait=wait)
    serializer = serializer_class(data=request.data, context={"user": request.user, "request": request})
    if not serializer.is_valid():
        if password_counts and "current_password" in serializer.errors:
            login_failed(request, username)
        raise ValidationError(serializer.errors)
    return serializer.validated_data


class AnonymousView(AccountView):
    """Called without a token: by whoever asks for a link, or holds one."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]


@extend_schema(
    summary="Change my password",
    description="Needs the current password. Answers a new token pair for this client; every token issued "
                "before, on any device, answers 401 from now on. A notice goes to the account's address.",
    request=PasswordChangeSerializer, examples=[examples.PASSWORD_CHANGE], parameters=[RETRY_AFTER],
    responses=api_responses({200: TokenPairSerializer}, 400, 401, 413, 415, 429),
)
class PasswordChangeView(AccountView):
    permission_classes = [IsAuthenticated]
    rate_limit = "password_change"

    def post(self, request: Request) -> Response:
        data = proven(request, PasswordChangeSerializer)
        user = accounts.password_change(user=request.user, new_password=data["new_password"])
        return Response(token_pair(user, request, amr=data["amr"]))


@extend_schema(
    summary="Ask for a password reset link",
    description="Emails a link `{FRONTEND_URL}/password-reset?uid=...&token=...` to the account with this "
                "address (any case), if there is one. The answer is the same either way.",
    request=PasswordResetSerializer, examples=[examples.PASSWORD_RESET], auth=[], parameters=[RETRY_AFTER],
    responses=api_responses({202: DetailSerializer}, 400, 413, 415, 429),
)
class PasswordResetView(AnonymousView):
    rate_limit = "password_reset"
    rate_limit_key = staticmethod(_email_key)

    def post(self, request: Request) -> Response:
        serializer = PasswordResetSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        accounts.password_reset_ask(email=serializer.validated_data["email"])
        return Response({"detail": RESET_ACCEPTED}, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    summary="Set a new password with a reset link",
    description="The uid and token come from the emailed link. A link works once and expires after "
                "PASSWORD_RESET_TIMEOUT (1 hour by default); every token issued before answers 401 from now on.",
    request=PasswordResetConfirmSerializer, examples=[examples.PASSWORD_RESET_CONFIRM], auth=[],
    parameters=[RETRY_AFTER],
    responses=api_responses({204: None}, 400, 413, 415, 429),
)
class PasswordResetConfirmView(AnonymousView):
    rate_limit = "password_reset_confirm"

    def post(self, request: Request) -> Response:
        serializer = PasswordResetConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        accounts.password_change(user=data["user"], new_password=data["new_password"],
                                 reason=Session.EndReason.PASSWORD_RESET)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    summary="Verify my email address",
    description="The uid and token come from the emailed link `{FRONTEND_URL}/verify-email?...`. A link works "
                "once, for the address it was sent to, and expires after PASSWORD_RESET_TIMEOUT.",
    request=EmailVerifySerializer, examples=[examples.EMAIL_VERIFY], auth=[], parameters=[RETRY_AFTER],
    responses=api_responses({204: None}, 400, 413, 415, 429),
)
class EmailVerifyView(AnonymousView):
    rate_limit = "email_verify"

    def post(self, request: Request) -> Response:
        serializer = EmailVerifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        accounts.email_verify(user=serializer.validated_data["user"])
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(
    summary="Create my account with a signup link",
    description="Under SIGNUP_PREVENT_ENUMERATION, the token comes from the link `{FRONTEND_URL}/confirm-signup?"
                "token=...` emailed after registering. Creates the account, its address verified, and answers "
                "it as registration does; 409 if the username or address was taken since. A link works once and "
                "expires after PASSWORD_RESET_TIMEOUT.",
    request=SignupConfirmSerializer, examples=[examples.SIGNUP_CONFIRM], auth=[], parameters=[RETRY_AFTER],
    responses=api_responses({201: UserPrivateSerializer}, 400, 409, 413, 415, 429),
)
class SignupConfirmView(AnonymousView):
    rate_limit = "signup_confirm"

    def post(self, request: Request) -> Response:
        serializer = SignupConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = accounts.signup_confirm(signup=serializer.validated_data["signup"])
        return Response(UserPrivateSerializer(user).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Send me a new verification link",
    description="A new link to the account's current address, unless it is verified already. "
                "Once per RATE_LIMIT_EMAIL_VERIFY_RESEND (3 minutes by default).",
    request=None, parameters=[RETRY_AFTER],
    responses=api_responses({202: DetailSerializer}, 401, 429),
)
class EmailVerificationResendView(AccountView):
    permission_classes = [IsAuthenticated]
    rate_limit = "email_verify_resend"

    def post(self, request: Request) -> Response:
        accounts.email_verification_resend(user=request.user)
        return Response({"detail": RESEND_ACCEPTED}, status=status.HTTP_202_ACCEPTED)


# --- A new address: the password, the new address's link, and the old address's way back -----------


def link_used(call: Any, **kwargs: Any) -> Any:
    """A service that uses an emailed link; a link that can no longer do it is a 400 naming `token`."""
    try:
        return call(**kwargs)
    except accounts.LinkNotValid:
        raise ValidationError({"token": [INVALID_LINK]}, code="invalid_link")


@extend_schema(
    summary="Change my email address",
    description="Needs the current password; a wrong one counts as a failed login (RATE_LIMIT_LOGIN_FAILED). "
                "Nothing changes yet: the new address gets a link `{FRONTEND_URL}/confirm-email-change?token=...` "
                "(valid EMAIL_CHANGE_TIMEOUT, only the latest request's, never after a password change) and "
                "the current address a notice. An address that has an account is a 409, as at signup; under "
                "SIGNUP_PREVENT_ENUMERATION the same 202, and its owner gets a notice.",
    request=EmailChangeSerializer, examples=[examples.EMAIL_CHANGE], parameters=[RETRY_AFTER],
    responses=api_responses({202: DetailSerializer}, 400, 401, 409, 413, 415, 429),
)
class EmailChangeView(AccountView):
    permission_classes = [IsAuthenticated]
    rate_limit = "email_change"

    def post(self, request: Request) -> Response:
        data = proven(request, EmailChangeSerializer, password_counts=True)
        accounts.email_change_request(user=request.user, new_email=data["new_email"])
        return Response({"detail": EMAIL_CHANGE_ACCEPTED}, status=status.HTTP_202_ACCEPTED)


@extend_schema(
    summary="Make the new address mine, with its link",
    description="The token of the link sent to the new address. The address becomes the account's, verified; "
                "the old one gets a link `{FRONTEND_URL}/revert-email-change?token=...` that puts it back for "
                "EMAIL_CHANGE_REVERT_DAYS. Answers the private profile; 409 if the address was taken since.",
    request=EmailChangeConfirmSerializer, examples=[examples.EMAIL_CHANGE_CONFIRM], auth=[],
    parameters=[RETRY_AFTER], responses=api_responses({200: UserPrivateSerializer}, 400, 409, 413, 415, 429),
)
class EmailChangeConfirmView(AnonymousView):
    rate_limit = "account_link"

    def post(self, request: Request) -> Response:
        serializer = EmailChangeConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = link_used(accounts.email_change_confirm, change=serializer.validated_data["change"])
        return Response(UserPrivateSerializer(user).data)


@extend_schema(
    summary="Put my old address back, with its link",
    description="The token of the link sent to the old address once the change was made. The old address "
                "is the account's again (verified), even if the password or the address changed since; every "
                "session ends, on every device, and a reset link goes to the old address. Works once; 409 if "
                "the old address was taken meanwhile.",
    request=EmailChangeRevertSerializer, examples=[examples.EMAIL_CHANGE_REVERT], auth=[],
    parameters=[RETRY_AFTER], responses=api_responses({200: DetailSerializer}, 400, 409, 413, 415, 429),
)
class EmailChangeRevertView(AnonymousView):
    rate_limit = "account_link"

    def post(self, request: Request) -> Response:
        serializer = EmailChangeRevertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        link_used(accounts.email_change_revert, change=serializer.validated_data["change"])
        return Response({"detail": REVERTED})


@extend_schema(
    summary="Secure my account, with the link of a new-device alert",
    description="Every session of the account ends at once, on every device, and a reset link goes to its "
                "address. The link works once, for EMAIL_CHANGE_REVERT_DAYS.",
    request=SecureAccountSerializer, examples=[examples.SECURE_ACCOUNT], auth=[], parameters=[RETRY_AFTER],
    responses=api_responses({200: DetailSerializer}, 400, 413, 415, 429),
)
class SecureAccountView(AnonymousView):
    rate_limit = "account_link"

    def post(self, request: Request) -> Response:
        serializer = SecureAccountSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user_id, session_epoch, since = serializer.validated_data["account"]
        link_used(accounts.account_secure, user_id=user_id, session_epoch=session_epoch, since=since)
        return Response({"detail": SECURED})
