"""Schemathesis hooks for tests/system/test_contract.py (loaded through SCHEMATHESIS_HOOKS).

Some rules of registration cannot be written in JSON Schema: a password must not resemble the
username or email nor be one of 20,000 common passwords; a username must not be reserved or a
mixed-script look-alike, and its letters are Unicode's (an ECMA regex's word class is ASCII);
an If-Match tag must name the profile's current version, which no generator can know.
A body that breaks one of them is schema-valid and rightly refused with a 400, which schemathesis
would report as "schema-valid request rejected". Its documented answer to that is to extend the
generators with the runtime rules: these hooks drop such bodies, judged by the very validators the
server runs, so that every other rejection still counts.
"""
import os
from typing import Any

import django
import schemathesis

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django.contrib.auth import password_validation  # noqa: E402
from django.contrib.auth.validators import UnicodeUsernameValidator  # noqa: E402
from django.core.exceptions import ValidationError  # noqa: E402

from users.models import User  # noqa: E402
from users.profile.validators import EMAIL_VALIDATORS, USERNAME_VALIDATORS  # noqa: E402


def _passes(validators: list, value: Any) -> bool:
    try:
        for validator in validators:
            validator(value)
    except ValidationError:
        return False
    return True


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    if not isinstance(body, dict) or not ctx.operation.path.startswith("/api/v1/users/"):
        return True
    username, email, password = body.get("username"), body.get("email"), body.get("password")
    if isinstance(username, str) and not _passes(
        [UnicodeUsernameValidator(), *USERNAME_VALIDATORS], User.normalize_username(username)
    ):
        return False
    if isinstance(email, str) and not _passes(EMAIL_VALIDATORS, email):
        return False
    if isinstance(password, str):
        fields = {k: v for k, v in body.items() if k in ("username", "email", "first_name", "last_name")}
        if all(isinstance(v, str) for v in fields.values()):
            user = User(**fields)
            return _passes([lambda p: password_validation.validate_password(p, user=user)], password)
    return True


@schemathesis.hook
def map_headers(ctx: Any, headers: Any) -> Any:
    """A random If-Match is rightly a 412: send `*` (any current version), which still goes
    through the precondition; tests/integration/test_conditional.py covers the stale tags."""
    if isinstance(headers, dict) and "If-Match" in headers:
        headers["If-Match"] = "*"
    return headers
