"""What every page shares: its headers, its link cookie, its rate limit, its error pages."""
import functools
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from users import ratelimits

# Nothing but our own stylesheet, our one script file ("Show the password", an enhancement: every
# page works without it) and forms posting to ourselves: no inline script, no frame, no other origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def render_page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return no_store(render(request, f"users/pages/{template}", context, status=status))


def no_store(response: HttpResponse) -> HttpResponse:
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
                no_store(response)
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


def link_used(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The link has done its work: its cookie goes."""
    response.delete_cookie(LINK_COOKIE, path=request.path, samesite="Lax")
    return response


@require_http_methods(["GET", "HEAD"])
def home(request: HttpRequest) -> HttpResponse:
    """The front door (and the admin's "View site"): what sidus is, and where its parts are."""
    response = render_page(request, "home.html", {"title": _("sidus, a user service")})
    response["Cache-Control"] = "no-cache"  # nothing of anyone's: but links may change with a deploy
    return response


@require_http_methods(["GET", "HEAD"])
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on every page that names no icon (the admin's): the pages' own
    icon, rather than a 404 and a warning in the log for each visit."""
    return HttpResponsePermanentRedirect(static("users/favicon.svg"))


def rate_limited(request: HttpRequest, action: str) -> HttpResponse | None:
    wait = ratelimits.hit(request, action)
    if wait is None:
        return None
    return render_page(request, "message.html", {
        "title": _("Too many attempts"),
        "message": _("Please wait %(seconds)s seconds, then try again.") % {"seconds": wait},
    }, status=429)


def invalid(request: HttpRequest, title: str, hint: str) -> HttpResponse:
    return render_page(request, "message.html", {
        "title": title, "message": _("The link is invalid or has expired."), "hint": hint,
    }, status=400)
