"""Rate limits per action, declared as django-allauth declares them ("10/m/ip,5/5m/key").

Counting is django-ratelimit's `get_usage` on the Redis cache: atomic add/incr per window, a
peek that does not count, and the time left in the window for Retry-After. What it does not do,
and this module does: parse allauth's syntax (several rates per action, each per ip, user or an
action-specific key), count failed logins only when they fail (a DRF throttle counts every
request), find the client IP behind a known number of proxies, and fail open when Redis is away
(django-ratelimit's own fail-open covers caches that return None, not ones that raise).
"""
import functools
import hashlib
import ipaddress
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import checks
from django_ratelimit.core import get_usage
from redis.exceptions import RedisError
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from users.models import fold
from users.runtime import current

logger = logging.getLogger(__name__)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Rate:
    amount: int
    seconds: int
    per: str  # "ip", "user" or "key"


@functools.lru_cache(maxsize=64)
def parse_rates(spec: str) -> tuple[Rate, ...]:
    """"10/m/ip,5/5m/key" -> two rates; the period is [n]s|m|h|d, `per` defaults to ip."""
    rates = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        amount, duration, *per = part.split("/")
        count, unit = duration[:-1] or "1", duration[-1:]
        if unit not in _UNITS or not count.isdigit() or not amount.isdigit() or per[1:]:
            raise ValueError(f"bad rate {part!r}: expected e.g. 10/m/ip or 5/5m/key")
        who = per[0] if per else "ip"
        if who not in ("ip", "user", "key"):
            raise ValueError(f"bad rate {part!r}: per must be ip, user or key")
        rates.append(Rate(int(amount), int(count) * _UNITS[unit], who))
    return tuple(rates)


@dataclass(frozen=True)
class Caller:
    """What the counters read of a request (its user and META), for a caller that has no Django
    request: the edge's lean PATCH counts `update` with the very same keys."""

    user: Any
    META: dict[str, str]


def rates_for(action: str) -> tuple[Rate, ...]:
    if not settings.RATE_LIMITS_ENABLED:
        return ()
    return parse_rates(settings.RATE_LIMITS.get(action, ""))


def client_ip(request: Any) -> str:
    """REMOTE_ADDR, or the X-Forwarded-For entry appended by the outermost of
    TRUSTED_PROXY_COUNT proxies; IPv6 clients count per /64, as one host usually holds one."""
    address = request.META.get("REMOTE_ADDR") or ""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [e.strip() for e in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if e.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return str(ip)


def _key_value(request: Any, rate: Rate, key: str | None) -> str | None:
    """What one counter counts, as a digest: django-ratelimit joins it with the group, rate and
    window before hashing, and a fixed-length hex value cannot be read two ways; nor can it fail
    to encode (a lone surrogate in a JSON string is valid input)."""
    if rate.per == "ip":
        value = client_ip(request)
    elif rate.per == "user":
        user = getattr(request, "user", None)
        value = str(user.pk) if user is not None and user.is_authenticated else None
    else:
        value = key
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest() if value is not None else None


def _usage(request: Any, action: str, key: str | None, *, count: bool) -> list[dict]:
    """The usage of every rate of `action`; empty (allowed) while Redis is unreachable."""
    health = current().redis.health
    if not health.available():
        return []
    usages = []
    try:
        for rate in rates_for(action):
            value = _key_value(request, rate, key)
            if value is None:
                continue
            usage = get_usage(request, group=f"sidus.{action}.{rate.per}", key=lambda group, request: value,
                              rate=(rate.amount, rate.seconds), increment=count)
            if usage is not None:
                usages.append(usage)
    except (RedisError, OSError) as exc:
        health.failed(exc)  # fail open: one warning per outage, never a 5xx
        return []
    return usages


def _retry_after(usages: Iterable[dict]) -> int:
    return max(1, math.ceil(max(u["time_left"] for u in usages)))


def hit(request: Any, action: str, key: str | None = None) -> int | None:
    """Count one attempt of `action`; the seconds to wait if that exceeded a rate, else None."""
    over = [u for u in _usage(request, action, key, count=True) if u["count"] > u["limit"]]
    return _retry_after(over) if over else None


def blocked_for(request: Any, action: str, key: str | None = None) -> int | None:
    """Peek without counting: the seconds to wait if `action` used up a rate already, else None."""
    full = [u for u in _usage(request, action, key, count=False) if u["count"] >= u["limit"]]
    return _retry_after(full) if full else None


class RateLimited(Throttled):
    """429 with Retry-After and a JSON detail (DRF's exception handler writes both)."""

    default_detail = "Too many requests."


class ActionThrottle(BaseThrottle):
    """A DRF throttle counting every request of one action; `key` finds the value of its "key"
    rates in the request (the email of a password reset), None to count none of them."""

    def __init__(self, action: str, key: Callable[[Any], str | None] | None = None) -> None:
        self.action = action
        self.key = key
        self._wait: int | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        self._wait = hit(request, self.action, self.key(request) if self.key else None)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


# --- Failed logins: counted when authentication fails, checked before it runs --------------------


def login_key(username: Any) -> str | None:
    """The username as login looks it up (`User.objects.named`): every spelling of one account
    shares one key."""
    return fold(username) if isinstance(username, str) else None


def login_failed(request: Any, username: Any) -> None:
    hit(request, "login_failed", login_key(username))


def login_blocked_for(request: Any, username: Any) -> int | None:
    return blocked_for(request, "login_failed", login_key(username))


# --- Wrong second factors: counted when a check fails, per client and per account ------------------


def mfa_failed(request: Any, user_id: int | None) -> None:
    hit(request, "mfa", str(user_id) if user_id is not None else None)


def mfa_blocked_for(request: Any, user_id: int | None) -> int | None:
    return blocked_for(request, "mfa", str(user_id) if user_id is not None else None)


@checks.register(checks.Tags.security)
def check_rate_limits(**kwargs: Any) -> list[checks.CheckMessage]:
    """A typo in RATE_LIMIT_* fails `manage.py check` and startup, not the first login."""
    errors = []
    for action, spec in settings.RATE_LIMITS.items():
        try:
            parse_rates(spec)
        except ValueError as exc:
            errors.append(checks.Error(str(exc), obj=f"RATE_LIMIT_{action.upper()}", id="users.E001"))
    return errors
