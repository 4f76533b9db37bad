"""The request examples of the API docs, which Swagger's "Try it out" fills in: one story, in order.

Grace registers, logs in, changes her profile, verifies her address, changes her password, forgets
it and resets it to the first one, looks at her sessions and her log, logs out, moves to a new
address and back, secures her account, sets up an authenticator app and a passkey, logs in with
them, removes them, and leaves. (The README's walk-through is Ada's: both run
on one database.) Each example succeeds as given in that order, but for the values that only an
answer or an email holds (a refresh token, a link's uid and token): those read `<...>` and say
where they come from. `tests/test_examples.py` sends them, and every operation without a body, to a
live server, after the README's walk-through.

`in_story_order` puts the schema's operations in that order, grouped by tag, so that Swagger UI
opens on registration.
"""
from typing import Any

from drf_spectacular.utils import OpenApiExample

PASSWORD = "compiler-pioneer-1952"
NEW_PASSWORD = "nanosecond-wire-1985"

REFRESH_TOKEN = "<the refresh token that logging in answered>"
LINK_UID = "<uid from the emailed link>"
LINK_TOKEN = "<token from the emailed link>"


def _example(summary: str, value: dict[str, Any], description: str = "") -> OpenApiExample:
    return OpenApiExample(summary, value=value, request_only=True, description=description)


REGISTER = _example("Grace registers", {
    "username": "grace", "email": "grace@example.com", "password": PASSWORD,
    "first_name": "Grace", "last_name": "Hopper", "bio": "Wrote the first compiler.",
})
LOG_IN = _example("Grace logs in", {"username": "grace", "password": PASSWORD},
                  "Then press Authorize and paste the `access` token it answers.")
REFRESH = _example("A new pair for the same session", {"refresh": REFRESH_TOKEN})
LOG_OUT = _example("Grace logs out", {"refresh": REFRESH_TOKEN})
UPDATE = _example("A longer bio", {"bio": "Rear admiral; wrote the first compiler, A-0, for the UNIVAC I."},
                  "Only the fields sent change.")
EMAIL_VERIFY = _example("The link of the welcome email", {"uid": LINK_UID, "token": LINK_TOKEN})
SIGNUP_CONFIRM = _example("The link of the signup email", {"token": LINK_TOKEN})
PASSWORD_CHANGE = _example("A new password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                           "Answers a new pair: authorize again with its `access` token.")
PASSWORD_RESET = _example("Grace forgot it", {"email": "grace@example.com"})
PASSWORD_RESET_CONFIRM = _example(
    "Back to the first password", {"uid": LINK_UID, "token": LINK_TOKEN, "new_password": PASSWORD},
    "The uid and token of the reset email's link; the log-in example works again after it.",
)
EMAIL_CHANGE = _example(
    "Grace moves to a new address", {"new_email": "grace@hopper.example", "current_password": PASSWORD},
    "Nothing changes until the link sent to the new address is followed.",
)
EMAIL_CHANGE_CONFIRM = _example("The link sent to the new address", {"token": LINK_TOKEN})
EMAIL_CHANGE_REVERT = _example("The link sent to the old address after the change", {"token": LINK_TOKEN},
                               "Puts the old address back, ends every session and emails a reset link: log in again.")
SECURE_ACCOUNT = _example("The link of a new-device alert", {"token": LINK_TOKEN},
                          "Ends every session and emails a reset link: log in again.")
LEAVE = _example("Grace leaves", {"current_password": PASSWORD})
INTROSPECT = _example("A service asks whether a token is live", {"token": "<an access or refresh token>"},
                      "Authorize with an id and secret of INTROSPECTION_CLIENTS (HTTP Basic) first.")
END_SESSIONS = _example("Grace signs her other devices out", {},
                        "An account with a second factor sends `code` (or a passkey's `credential`).")

APP_CODE = "<the 6 digits the app shows now>"
A_CODE = "<a code of the app, or one of the recovery codes>"
CREDENTIAL = "<the PublicKeyCredential the browser answered, as JSON>"
TOTP_BEGIN = _example("Grace sets up an authenticator app", {"current_password": PASSWORD},
                      "Scan `qr_svg` (or type `secret`) into the app.")
TOTP_CONFIRM = _example("Its first code turns it on", {"code": APP_CODE},
                        "Keep the ten recovery codes it answers: they are shown this once.")
RECOVERY_CODES = _example("A new set of recovery codes", {"current_password": PASSWORD, "code": A_CODE})
PASSKEY_OPTIONS = _example("Grace adds a passkey", {"current_password": PASSWORD, "code": A_CODE},
                           "Give the options to navigator.credentials.create().")
PASSKEY_ADD = _example("The browser's answer", {"credential": CREDENTIAL, "name": "laptop"})
PASSKEY_RENAME = _example("A clearer name", {"name": "work laptop"})
MFA_AUTHENTICATE = _example("The second step of a login", {"mfa_token": "<mfa_token from the 401>",
                                                           "code": A_CODE})
PASSKEY_LOGIN = _example("A login with the passkey alone", {"credential": CREDENTIAL},
                         "The browser's answer to the login options.")
PASSKEY_REMOVE = _example("Grace removes the passkey", {"current_password": PASSWORD, "code": A_CODE})
TOTP_DISABLE = _example("...and turns the app off", {"current_password": PASSWORD, "code": A_CODE})

# The tags of Swagger UI, in the story's order, and the operations in each, in the order the story
# calls them (tests/test_examples.py sends them so).
TAGS = {
    "users": "Register, read and change profiles, leave.",
    "auth": "Log in, refresh the pair, log out.",
    "password": "Change it, or reset it with an emailed link.",
    "email": "Verify the address; move to a new one, with the password and the new address's link.",
    "sessions": "The devices logged in, ended one by one, all at once, or from a new-device alert.",
    "security log": "What happened to my account.",
    "second factor": "An authenticator app, recovery codes and passkeys: at login, and before every change that "
                     "could take the account.",
}
STORY = [
    ("users", "POST /api/v1/users/"), ("users", "POST /api/v1/auth/signup/confirm/"),
    ("auth", "POST /api/v1/auth/token/"), ("auth", "POST /api/v1/auth/token/refresh/"),
    ("users", "PATCH /api/v1/users/me/"), ("users", "PATCH /api/v1/users/{id}/"),
    ("users", "GET /api/v1/users/me/"), ("users", "GET /api/v1/users/{id}/"),
    ("email", "POST /api/v1/auth/email/verify/resend/"), ("email", "POST /api/v1/auth/email/verify/"),
    ("password", "POST /api/v1/auth/password/change/"), ("password", "POST /api/v1/auth/password/reset/"),
    ("password", "POST /api/v1/auth/password/reset/confirm/"),
    ("sessions", "GET /api/v1/auth/sessions/"), ("sessions", "DELETE /api/v1/auth/sessions/{session_id}/"),
    ("sessions", "DELETE /api/v1/auth/sessions/"), ("security log", "GET /api/v1/users/me/events/"),
    ("auth", "POST /api/v1/auth/introspect/"), ("auth", "POST /api/v1/auth/token/blacklist/"),
    ("email", "POST /api/v1/auth/email/change/"), ("email", "POST /api/v1/auth/email/change/confirm/"),
    ("email", "POST /api/v1/auth/email/change/revert/"), ("sessions", "POST /api/v1/auth/secure-account/"),
    ("second factor", "POST /api/v1/auth/mfa/totp/"), ("second factor", "POST /api/v1/auth/mfa/totp/confirm/"),
    ("second factor", "GET /api/v1/auth/mfa/"), ("second factor", "POST /api/v1/auth/mfa/recovery-codes/"),
    ("second factor", "POST /api/v1/auth/passkeys/registration/options/"),
    ("second factor", "POST /api/v1/auth/passkeys/"), ("second factor", "PATCH /api/v1/auth/passkeys/{passkey_id}/"),
    ("second factor", "POST /api/v1/auth/mfa/authenticate/"),
    ("second factor", "POST /api/v1/auth/passkeys/login/options/"),
    ("second factor", "POST /api/v1/auth/passkeys/login/"),
    ("second factor", "POST /api/v1/auth/passkeys/assertion/options/"),
    ("second factor", "DELETE /api/v1/auth/passkeys/{passkey_id}/"),
    ("second factor", "DELETE /api/v1/auth/mfa/totp/"),
    ("users", "DELETE /api/v1/users/me/"),
]


def in_story_order(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular's postprocessing hook: each operation under its tag, the tags and the
    operations in the story's order (paths by their first operation in it)."""
    place = {operation: n for n, (_, operation) in enumerate(STORY)}
    tag = dict((operation, name) for name, operation in STORY)
    paths: dict[str, dict[str, Any]] = {}
    for path, methods in result["paths"].items():
        for method, operation in methods.items():
            operation["tags"] = [tag[f"{method.upper()} {path}"]]
        paths[path] = dict(sorted(methods.items(), key=lambda item: place[f"{item[0].upper()} {path}"]))
    first = {path: min(place[f"{method.upper()} {path}"] for method in methods) for path, methods in paths.items()}
    result["paths"] = dict(sorted(paths.items(), key=lambda item: first[item[0]]))
    result["tags"] = [{"name": name, "description": description} for name, description in TAGS.items()]
    return result
