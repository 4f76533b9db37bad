"""The pages behind the emailed links, each a plain Django form over the API's own serializers."""
from collections.abc import Callable
from typing import Any

from django.contrib.auth import password_validation
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from users import accounts
from users.api.serializers import (
    EmailChangeConfirmSerializer,
    EmailChangeRevertSerializer,
    EmailVerifySerializer,
    PasswordResetConfirmSerializer,
    PasswordResetLinkSerializer,
    SecureAccountSerializer,
    SignupConfirmSerializer,
)
from users.mail import links
from users.models import Session
from users.pages.base import invalid, link_used, rate_limited, render_page, takes_link


@csrf_protect  # the project's CSRF middleware guards the admin alone: these forms ask for it themselves
@require_http_methods(["GET", "POST"])
@takes_link("uid", "token")
def verify_email(request: HttpRequest, link: dict[str, str]) -> HttpResponse:
    """One click: the GET shows a button, the POST verifies (a GET never changes anything)."""
    title = _("Verify your email address")
    resend = _("Log in and ask for a new link (POST /api/v1/auth/email/verify/resend/): it goes to the address "
               "on your account.")
    if not (link["uid"] and link["token"]):
        return invalid(request, title, resend)
    if request.method == "GET":
        return render_page(request, "confirm.html", {
            "title": title, "prompt": _("Confirm that this address is yours: press the button."),
            "button": _("Verify my address"),
        })
    if (limited := rate_limited(request, "email_verify")) is not None:
        return limited
    if _used_already(link):
        return link_used(request, render_page(request, "message.html", {
            "title": _("Already verified"), "message": _("This address was verified already. Nothing else to do."),
        }))
    serializer = EmailVerifySerializer(data=link)
    if not serializer.is_valid():
        return invalid(request, title, resend)
    accounts.email_verify(user=serializer.validated_data["user"])
    return link_used(request, render_page(request, "message.html", {
        "title": _("Address verified"), "message": _("Thank you: your email address is verified."),
    }))


def _used_already(link: dict[str, str]) -> bool:
    """A genuine verification link whose address is verified now: the token covers the verified
    state, so it is checked as the user was when it was made. A made-up token says nothing."""
    user = links.user_from_uid(link["uid"])
    if user is None or not user.email_verified:
        return False
    user.email_verified = False  # this instance only: never saved
    return links.email_verification_token.check_token(user, link["token"])


@csrf_protect
@require_http_methods(["GET", "POST"])
@takes_link("uid", "token")
def password_reset(request: HttpRequest, link: dict[str, str]) -> HttpResponse:
    """A form for the new password, with its rules; the API's validators judge it."""
    title = _("Choose a new password")
    again = _("Ask for a new reset link (POST /api/v1/auth/password/reset/): each link works once, for a limited "
              "time.")
    if not (link["uid"] and link["token"]):
        return invalid(request, title, again)
    context = {"title": title, "rules": password_validation.password_validators_help_texts()}
    if request.method == "GET":
        if not PasswordResetLinkSerializer(data=link).is_valid():
            return invalid(request, title, again)
        return render_page(request, "password_reset.html", context)
    if (limited := rate_limited(request, "password_reset_confirm")) is not None:
        return limited
    serializer = PasswordResetConfirmSerializer(data={**link, "new_password": request.POST.get("new_password", "")})
    if not serializer.is_valid():
        errors = serializer.errors
        if "uid" in errors or "token" in errors:
            return invalid(request, title, again)
        return render_page(request, "password_reset.html", {**context, "errors": errors.get("new_password", [])},
                           status=400)
    data = serializer.validated_data
    accounts.password_change(user=data["user"], new_password=data["new_password"],
                             reason=Session.EndReason.PASSWORD_RESET)
    return link_used(request, render_page(request, "message.html", {
        "title": _("Password changed"),
        "message": _("Your new password is set. Every device that was logged in has been logged out: "
                     "log in again with the new password."),
    }))


@csrf_protect
@require_http_methods(["GET", "POST"])
@takes_link("token")
def confirm_signup(request: HttpRequest, link: dict[str, str]) -> HttpResponse:
    """Under SIGNUP_PREVENT_ENUMERATION: one click creates the account the signup asked for."""
    token = link["token"]
    title = _("Create your account")
    again = _("Sign up again: each link works once, for a limited time.")
    if not token:
        return invalid(request, title, again)
    if request.method == "GET":
        return render_page(request, "confirm.html", {
            "title": title, "button": _("Create my account"),
            "prompt": _("Press the button to create your account with the name and password you chose."),
        })
    if (limited := rate_limited(request, "signup_confirm")) is not None:
        return limited
    serializer = SignupConfirmSerializer(data={"token": token})
    if not serializer.is_valid():
        return invalid(request, title, again)
    try:
        user = accounts.signup_confirm(signup=serializer.validated_data["signup"])
    except accounts.NameTaken:  # the name or the address was taken since (the API's 409)
        return render_page(request, "message.html", {
            "title": _("This name was taken"),
            "message": _("Someone took this username or address since you signed up."),
            "hint": _("Sign up again with another username."),
        }, status=409)
    return link_used(request, render_page(request, "message.html", {
        "title": _("Account created"),
        "message": _("The account %(username)s is ready and its address verified: log in with your password.")
        % {"username": user.username},
    }))


def _one_click(
    request: HttpRequest, token: str, *, title: str, prompt: str, button: str, again: str, serializer_class: type,
    use: Callable[[dict[str, Any]], Any], done: Callable[[Any], str],
) -> HttpResponse:
    """A link that does one thing: the GET shows a button, the POST checks the link with the
    API's serializer and does it with the API's service (`use`), and says what was `done`."""
    if not token:
        return invalid(request, title, again)
    if request.method == "GET":
        return render_page(request, "confirm.html", {"title": title, "prompt": prompt, "button": button})
    if (limited := rate_limited(request, "account_link")) is not None:
        return limited
    serializer = serializer_class(data={"token": token})
    if not serializer.is_valid():
        return invalid(request, title, again)
    try:
        result = use(serializer.validated_data)
    except accounts.LinkNotValid:
        return invalid(request, title, again)
    except accounts.NameTaken:  # the address was taken meanwhile (the API's 409)
        return render_page(request, "message.html", {
            "title": _("This address was taken"), "message": _("Another account has this address now."),
        }, status=409)
    return link_used(request, render_page(request, "message.html", {"title": title, "message": done(result)}))


@csrf_protect
@require_http_methods(["GET", "POST"])
@takes_link("token")
def confirm_email_change(request: HttpRequest, link: dict[str, str]) -> HttpResponse:
    """The new address's link: one click makes it the account's."""
    return _one_click(
        request, link["token"], title=_("Confirm your new address"), button=_("Use this address"),
        prompt=_("Press the button to make this address your account's."),
        again=_("Ask for the change again: each link works once, for a limited time, and only the latest one."),
        serializer_class=EmailChangeConfirmSerializer,
        use=lambda data: accounts.email_change_confirm(change=data["change"]),
        done=lambda user: _("Done: %(email)s is your account's address now.") % {"email": user.email},
    )


@csrf_protect
@require_http_methods(["GET", "POST"])
@takes_link("token")
def revert_email_change(request: HttpRequest, link: dict[str, str]) -> HttpResponse:
    """The old address's link: one click puts it back and throws out whoever holds the account."""
    return _one_click(
        request, link["token"], title=_("Put your address back"), button=_("Put my address back"),
        prompt=_("Press the button to make this address your account's again. Every device will be signed out, "
                 "and a link to choose a new password will be sent here."),
        again=_("This link was used already or has expired."),
        serializer_class=EmailChangeRevertSerializer,
        use=lambda data: accounts.email_change_revert(change=data["change"]),
        done=lambda user: _("Done: this address is your account's again, every device is signed out, and a link "
                            "to choose a new password is on its way."),
    )


@csrf_protect
@require_http_methods(["GET", "POST"])
@takes_link("token")
def secure_account(request: HttpRequest, link: dict[str, str]) -> HttpResponse:
    """A login alert's link: one click signs every device out."""
    return _one_click(
        request, link["token"], title=_("Secure your account"), button=_("Sign every device out"),
        prompt=_("Press the button to sign every device out of your account; a link to choose a new password "
                 "will be sent to its address."),
        again=_("This link was used already or has expired."),
        serializer_class=SecureAccountSerializer,
        use=lambda data: accounts.account_secure(
            user_id=data["account"][0], session_epoch=data["account"][1], since=data["account"][2]),
        done=lambda user: _("Done: every device is signed out, and a link to choose a new password is on its "
                            "way."),
    )
