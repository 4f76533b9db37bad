"""The pages behind the emailed links, for when FRONTEND_URL is sidus itself (the default).

`/verify-email?uid=...&token=...`, `/password-reset?uid=...&token=...` and
`/confirm-signup?token=...` are what the welcome, verification, reset and signup emails link to.
Each is a plain Django form: a GET shows it, a POST (CSRF protected) validates with the API's own
serializers and calls the same service as the API, so a page and `POST /api/v1/auth/...` can
never disagree. No JavaScript needed (one script file adds "Show the password"); a strict
Content-Security-Policy.

The link's secrets leave the URL at once, as Django's PasswordResetConfirmView moves its token
into the session: the GET of the emailed URL keeps them in a signed, HttpOnly cookie scoped to
the page and redirects to the page's bare path, so the page itself, its form's POST, the
browser's history and a Referer never carry them. The one request that did is written to the
access log with its token redacted (sidus/logging.py).
"""
import functools
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import ValidationError

from users import links, ratelimits, services
from users.account_serializers import (
    EmailChangeConfirmSerializer,
    EmailChangeRevertSerializer,
    EmailVerifySerializer,
    PasswordResetConfirmSerializer,
    PasswordResetLinkSerializer,
    SecureAccountSerializer,
    SignupConfirmSerializer,
)
from users.models import Session

# Nothing but our own stylesheet, our one script file ("Show the password", an enhancement: every
# page works without it) and forms posting to ourselves: no inline script, no frame, no other origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return _no_store(render(request, f"users/pages/{template}", context, status=status))


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Cache-Control"] = "no-store"  # a page of one person's link
    # Nothing of the page leaves for another origin; "no-referrer" would also make the browser post
    # `Origin: null`, which Django's CSRF check refuses.
    response["Referrer-Policy"] = "same-origin"
    return response


LINK_COOKIE = "sidus_link"
_LINK_SALT = "sidus.users.pages.link"


def takes_link(*names: str) -> Callable[[Callable[..., HttpResponse]], Callable[[HttpRequest], HttpResponse]]:
    """A page behind an emailed link, called with the link's parameters `names` (blank if none).
    A GET of the link itself keeps them in the page's cookie and redirects to the bare page."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
        @functools.wraps(view)
        def page(request: HttpRequest) -> HttpResponse:
            if request.method == "GET" and any(name in request.GET for name in names):
                response = HttpResponseRedirect(request.path)
                _no_store(response)
                response.set_signed_cookie(
                    LINK_COOKIE, json.dumps({name: request.GET.get(name, "") for name in names}), salt=_LINK_SALT,
                    max_age=settings.PASSWORD_RESET_TIMEOUT, path=request.path, secure=request.is_secure(),
                    httponly=True, samesite="Lax",
                )
                return response
            kept = request.get_signed_cookie(LINK_COOKIE, default=None, salt=_LINK_SALT,
                                             max_age=settings.PASSWORD_RESET_TIMEOUT)
            link = json.loads(kept) if kept else {}
            return view(request, {name: str(link.get(name, "")) for name in names})

        return page

    return decorate


def _used(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The link has done its work: its cookie goes."""
    response.delete_cookie(LINK_COOKIE, path=request.path, samesite="Lax")
    return response


@require_http_methods(["GET", "HEAD"])
def home(request: HttpRequest) -> HttpResponse:
    """The front door (and the admin's "View site"): what sidus is, and where its parts are."""
    response = _page(request, "home.html", {"title": _("sidus, a user service")})
    response["Cache-Control"] = "no-cache"  # nothing of anyone's: but links may change with a deploy
    return response


@require_http_methods(["GET", "HEAD"])
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page that names no icon (the admin's): the pages' own
    icon, rather than a 404 and a warning in the log for each visit."""
    return HttpResponsePermanentRedirect(static("users/favicon.svg"))


def _limited(request: HttpRequest, action: str) -> HttpResponse | None:
    wait = ratelimits.hit(request, action)
    if wait is None:
        return None
    return _page(request, "message.html", {
        "title": _("Too many attempts"),
        "message": _("Please wait %(seconds)s seconds, then try again.") % {"seconds": wait},
    }, status=429)


def _invalid(request: HttpRequest, title: str, hint: str) -> HttpResponse:
    return _page(request, "message.html", {
        "title": title, "message": _("The link is invalid or has expired."), "hint": hint,
    }, status=400)


@csrf_protect  # the project's CSRF middleware guards the admin alone: these forms ask for it themselves
@require_http_methods(["GET", "POST"])
@takes_link("uid", "token")
def verify_email(request: HttpRequest, link: dict[str, str]) -> HttpResponse:
    """One click: the GET shows a button, the POST verifies (a GET never changes anything)."""
    title = _("Verify your email address")
    resend = _("Log in and ask for a new link (POST /api/v1/auth/email/verify/resend/): it goes to the address "
               "on your account.")
    if not (link["uid"] and link["token"]):
        return _invalid(request, title, resend)
    if request.method == "GET":
        return _page(request, "confirm.html", {
            "title": title, "prompt": _("Confirm that this address is yours: press the button."),
            "button": _("Verify my address"),
        })
    if (limited := _limited(request, "email_verify")) is not None:
        return limited
    if _used_already(link):
        return _used(request, _page(request, "message.html", {
            "title": _("Already verified"), "message": _("This address was verified already. Nothing else to do."),
        }))
    serializer = EmailVerifySerializer(data=link)
    if not serializer.is_valid():
        return _invalid(request, title, resend)
    services.email_verify(user=serializer.validated_data["user"])
    return _used(request, _page(request, "message.html", {
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
        return _invalid(request, title, again)
    context = {"title": title, "rules": password_validation.password_validators_help_texts()}
    if request.method == "GET":
        if not PasswordResetLinkSerializer(data=link).is_valid():
            return _invalid(request, title, again)
        return _page(request, "password_reset.html", context)
    if (limited := _limited(request, "password_reset_confirm")) is not None:
        return limited
    serializer = PasswordResetConfirmSerializer(data={**link, "new_password": request.POST.get("new_password", "")})
    if not serializer.is_valid():
        errors = serializer.errors
        if "uid" in errors or "token" in errors:
            return _invalid(request, title, again)
        return _page(request, "password_reset.html", {**context, "errors": errors.get("new_password", [])}, status=400)
    data = serializer.validated_data
    services.password_change(user=data["user"], new_password=data["new_password"],
                             reason=Session.EndReason.PASSWORD_RESET)
    return _used(request, _page(request, "message.html", {
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
        return _invalid(request, title, again)
    if request.method == "GET":
        return _page(request, "confirm.html", {
            "title": title, "button": _("Create my account"),
            "prompt": _("Press the button to create your account with the name and password you chose."),
        })
    if (limited := _limited(request, "signup_confirm")) is not None:
        return limited
    serializer = SignupConfirmSerializer(data={"token": token})
    if not serializer.is_valid():
        return _invalid(request, title, again)
    try:
        user = services.signup_confirm(signup=serializer.validated_data["signup"])
    except ValidationError:  # the name or the address was taken since (the API's 409)
        return _page(request, "message.html", {
            "title": _("This name was taken"),
            "message": _("Someone took this username or address since you signed up."),
            "hint": _("Sign up again with another username."),
        }, status=409)
    return _used(request, _page(request, "message.html", {
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
        return _invalid(request, title, again)
    if request.method == "GET":
        return _page(request, "confirm.html", {"title": title, "prompt": prompt, "button": button})
    if (limited := _limited(request, "account_link")) is not None:
        return limited
    serializer = serializer_class(data={"token": token})
    if not serializer.is_valid():
        return _invalid(request, title, again)
    try:
        result = use(serializer.validated_data)
    except services.LinkNotValid:
        return _invalid(request, title, again)
    except ValidationError:  # the address was taken meanwhile (the API's 409)
        return _page(request, "message.html", {
            "title": _("This address was taken"), "message": _("Another account has this address now."),
        }, status=409)
    return _used(request, _page(request, "message.html", {"title": title, "message": done(result)}))


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
        use=lambda data: services.email_change_confirm(change=data["change"]),
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
        use=lambda data: services.email_change_revert(change=data["change"]),
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
        use=lambda data: services.account_secure(user_id=data["account"][0], session_epoch=data["account"][1]),
        done=lambda user: _("Done: every device is signed out, and a link to choose a new password is on its "
                            "way."),
    )
