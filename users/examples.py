"""The request examples of the API docs, which Swagger's "Try it out" fills in: one story, in order.

Ada registers, logs in, changes her profile, verifies her address, looks at her sessions and her
log, changes her password, forgets it and resets it to the first one, logs out, and leaves. From an
empty database each example succeeds as given in that order, but for the values that only an
answer or an email holds (a refresh token, a link's uid and token): those read `<...>` and say
where they come from. `tests/test_examples.py` sends them, and every operation without a body, to a
live server.
"""
from typing import Any

from drf_spectacular.utils import OpenApiExample

PASSWORD = "analytical-engine-1843"
NEW_PASSWORD = "difference-engine-1822"

REFRESH_TOKEN = "<the refresh token that logging in answered>"
LINK_UID = "<uid from the emailed link>"
LINK_TOKEN = "<token from the emailed link>"


def _example(summary: str, value: dict[str, Any], description: str = "") -> OpenApiExample:
    return OpenApiExample(summary, value=value, request_only=True, description=description)


REGISTER = _example("Ada registers", {
    "username": "ada", "email": "ada@example.com", "password": PASSWORD,
    "first_name": "Ada", "last_name": "Lovelace", "bio": "Wrote the first program.",
})
LOG_IN = _example("Ada logs in", {"username": "ada", "password": PASSWORD},
                  "Then press Authorize and paste the `access` token it answers.")
REFRESH = _example("A new pair for the same session", {"refresh": REFRESH_TOKEN})
LOG_OUT = _example("Ada logs out", {"refresh": REFRESH_TOKEN})
UPDATE = _example("A longer bio", {"bio": "Mathematician; wrote the first program, for the Analytical Engine."},
                  "Only the fields sent change.")
EMAIL_VERIFY = _example("The link of the welcome email", {"uid": LINK_UID, "token": LINK_TOKEN})
SIGNUP_CONFIRM = _example("The link of the signup email", {"token": LINK_TOKEN})
PASSWORD_CHANGE = _example("A new password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
                           "Answers a new pair: authorize again with its `access` token.")
PASSWORD_RESET = _example("Ada forgot it", {"email": "ada@example.com"})
PASSWORD_RESET_CONFIRM = _example(
    "Back to the first password", {"uid": LINK_UID, "token": LINK_TOKEN, "new_password": PASSWORD},
    "The uid and token of the reset email's link; the log-in example works again after it.",
)
EMAIL_CHANGE = _example(
    "Ada moves to a new address", {"new_email": "ada@lovelace.example", "current_password": PASSWORD},
    "Nothing changes until the link sent to the new address is followed.",
)
EMAIL_CHANGE_CONFIRM = _example("The link sent to the new address", {"token": LINK_TOKEN})
EMAIL_CHANGE_REVERT = _example("The link sent to the old address after the change", {"token": LINK_TOKEN},
                               "Puts the old address back, ends every session and emails a reset link: log in again.")
SECURE_ACCOUNT = _example("The link of a new-device alert", {"token": LINK_TOKEN},
                          "Ends every session and emails a reset link: log in again.")
LEAVE = _example("Ada leaves", {"current_password": PASSWORD})
