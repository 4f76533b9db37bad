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
access log with its token redacted (sidus/logs.py).
"""
from users.pages.base import favicon, home
from users.pages.views import (
    confirm_email_change,
    confirm_signup,
    password_reset,
    revert_email_change,
    secure_account,
    verify_email,
)

__all__ = ["confirm_email_change", "confirm_signup", "favicon", "home", "password_reset", "revert_email_change",
           "secure_account", "verify_email"]
