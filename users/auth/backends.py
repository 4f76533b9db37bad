"""Django's ModelBackend behind the failed-login limit, for the API's token view and the admin."""
from typing import Any

from django.contrib.auth.backends import ModelBackend

from users import ratelimits
from users.models import User


class RateLimitedModelBackend(ModelBackend):
    """Refuses a login while its username or client IP is over RATE_LIMIT_LOGIN_FAILED.

    The refusal costs one password hash, like ModelBackend's answer to an unknown username, so
    that a locked username cannot be told from a wrong password by timing. Failures are
    counted by the `user_login_failed` receiver in users/signals.py.
    """

    def authenticate(self, request: Any, username: Any = None, password: Any = None, **kwargs: Any) -> Any:
        if request is not None:
            wait = ratelimits.login_blocked_for(request, username)
            if wait is not None:
                User().set_password(password)
                raise ratelimits.RateLimited(wait=wait)
        return super().authenticate(request, username=username, password=password, **kwargs)
