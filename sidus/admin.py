"""The admin site: its login asks for the second factor of an account that has one, under the
API's limits, and with MFA_REQUIRED_FOR_STAFF staff without a factor set one up before any page.
Installed as Django's default site by `sidus.apps.AdminConfig`, as Django's docs do it (the
model admins are users/admin/'s)."""
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from users import accounts
from users.auth.factors import factor_attempt
from users.auth.tokens import client_of
from users.ratelimits import RateLimited

TOO_MANY_LOGINS = "Too many failed logins. Try again in %(wait)s seconds."
TOO_MANY_CODES = "Too many wrong codes. Try again in %(wait)s seconds."


class AdminLoginForm(AdminAuthenticationForm):
    """The admin login under the API's failed-login limit (users/auth/backends.py), and with a code
    for an account with a second factor (its app's, or a recovery code), under RATE_LIMIT_MFA."""

    code = forms.CharField(required=False, max_length=32, label="Code (accounts with a second factor)",
                           help_text="The 6 digits of your authenticator app, or a recovery code.",
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}))

    def clean(self) -> dict[str, Any]:
        try:
            cleaned = super().clean()
        except RateLimited as exc:
            raise ValidationError(TOO_MANY_LOGINS, code="rate_limited", params={"wait": exc.wait})
        user = self.get_user()
        if user is not None and accounts.has_factor(user):
            try:
                factor_attempt(self.request, user, accounts.factor_verify, user=user, code=cleaned.get("code"),
                               client=client_of(self.request))
            except RateLimited as exc:
                raise ValidationError(TOO_MANY_CODES, code="rate_limited", params={"wait": exc.wait})
            except accounts.FactorRequired:
                raise ValidationError("This account has a second factor: enter the code of its authenticator app "
                                      "or a recovery code.", code="mfa_required")
            except accounts.FactorNotValid:
                raise ValidationError("The code is not right, or was used already.", code="mfa_invalid")
        return cleaned


class SetupForm(forms.Form):
    code = forms.CharField(max_length=32, label="The code your app shows now")


class AdminSite(admin.AdminSite):
    login_form = AdminLoginForm

    def get_urls(self) -> list:
        return [path("mfa-setup/", self.admin_view(self.mfa_setup), name="mfa_setup"), *super().get_urls()]

    def admin_view(self, view: Callable, cacheable: bool = False) -> Callable:
        """Every admin page but this setup and logout first needs a factor, under MFA_REQUIRED_FOR_STAFF."""
        inner = super().admin_view(view, cacheable)

        @wraps(view)
        def needs_a_factor(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if (settings.MFA_REQUIRED_FOR_STAFF and user.is_active and user.is_staff
                    and view.__name__ not in ("mfa_setup", "logout") and not accounts.has_factor(user)):
                return redirect("admin:mfa_setup")
            return inner(request, *args, **kwargs)

        return needs_a_factor

    def mfa_setup(self, request: HttpRequest) -> HttpResponse:
        """An authenticator app for the staff member logged in: its QR code, then its first code
        turns it on and shows the recovery codes, once."""
        context = {**self.each_context(request), "title": "Set up a second factor"}
        if accounts.has_factor(request.user):
            return redirect("admin:index")
        form = SetupForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                codes = accounts.totp_confirm(user=request.user, code=form.cleaned_data["code"])
            except (accounts.FactorNotValid, accounts.FactorConflict):
                form.add_error("code", "The code is not right: scan the new QR code and try again.")
            else:
                return TemplateResponse(request, "admin/users/mfa_setup.html", {**context, "recovery_codes": codes})
        setup = accounts.totp_begin(user=request.user)
        return TemplateResponse(request, "admin/users/mfa_setup.html", {**context, "form": form, "setup": setup})
