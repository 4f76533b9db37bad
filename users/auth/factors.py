"""A second factor tried by a client, under RATE_LIMIT_MFA: the one rule for the API (login, its
second step, every sensitive change) and the admin's login."""
from collections.abc import Callable
from typing import Any

from users import accounts
from users.models import User
from users.ratelimits import RateLimited, mfa_blocked_for, mfa_failed


def factor_attempt(request: Any, user: User | None, check: Callable[..., Any], /, **kwargs: Any) -> Any:
    """`check(**kwargs)`, a service that checks a factor of `user` (None: not known yet, a passkey
    alone), from `request`'s client. Past RATE_LIMIT_MFA, RateLimited after as much work as a check
    (a locked account answers as slowly as an open one) and even for the right factor; a wrong one
    (FactorNotValid) is counted, per client and per account, and raised again."""
    user_id = user.pk if user is not None else None
    if (wait := mfa_blocked_for(request, user_id)) is not None:
        if user is not None:
            accounts.mfa_check_cost(user=user)
        raise RateLimited(wait=wait)
    try:
        return check(**kwargs)
    except accounts.FactorNotValid:
        mfa_failed(request, user_id)
        raise
