"""What the tests of every tier share: the factories and the few calls every story starts with.

Fixtures live in conftest.py; these are plain functions, importable anywhere.
"""
import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

PASSWORD = "correct-horse-battery-9"
USERS = "/api/v1/users/"
TOKEN = "/api/v1/auth/token/"

_counter = itertools.count(1)


def user_factory(**fields: Any) -> Any:
    """A saved user, with a username, an address and a bio of its own unless given."""
    from users.models import User

    n = next(_counter)
    fields.setdefault("username", f"user{n}")
    fields.setdefault("email", f"user{n}@example.com")
    fields.setdefault("bio", f"bio of user {n}")
    return User.objects.create_user(password=fields.pop("password", PASSWORD), **fields)


async def auser_factory(name: str, **fields: Any) -> Any:
    """`user_factory` from async code: `name` is the username and the address's local part."""
    return await sync_to_async(user_factory)(username=name, email=f"{name}@example.com", **fields)


def register(client: APIClient | None = None, **fields: Any) -> Any:
    """POST /users/ as a client would: Ada, unless `fields` say otherwise."""
    payload = {"username": "ada", "email": "ada@example.com", "password": PASSWORD, **fields}
    return (client or APIClient()).post(USERS, payload, format="json")


def login(client: APIClient | None, username: str, password: str = PASSWORD, **extra: Any) -> Any:
    """POST /auth/token/; `extra` are request headers and META (REMOTE_ADDR, HTTP_USER_AGENT)."""
    return (client or APIClient()).post(TOKEN, {"username": username, "password": password}, format="json", **extra)


def token_pair_of(client: APIClient | None, username: str, password: str = PASSWORD, **extra: Any) -> dict[str, str]:
    """A login that must succeed: its access and refresh tokens."""
    response = login(client, username, password, **extra)
    assert response.status_code == 200, response.content
    return response.json()


def auth_client(username: str, password: str = PASSWORD) -> APIClient:
    """A client logged in as `username`, its refresh token at hand (`client.refresh`)."""
    client = APIClient()
    pair = token_pair_of(client, username, password)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    client.refresh = pair["refresh"]
    return client


def authorization(pair: dict[str, str]) -> dict[str, str]:
    """The Authorization header of a pair's access token, for Django's test client."""
    return {"HTTP_AUTHORIZATION": f"Bearer {pair['access']}"}


def bearer(user: Any) -> dict[str, str]:
    """The Authorization header of a fresh access token for `user` (no login)."""
    from users.auth.tokens import token_pair

    return {"HTTP_AUTHORIZATION": f"Bearer {token_pair(user)['access']}"}


async def abearer(user: Any) -> dict[str, str]:
    """`bearer` from async code, as an httpx header."""
    return {"Authorization": (await sync_to_async(bearer)(user))["HTTP_AUTHORIZATION"]}


async def wait_for(condition: Callable[[], Any], timeout: float = 2.0) -> None:
    """Until `condition()` holds, on the event loop; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def redis_keys() -> set[bytes]:
    """The profile cache's keys in L2."""
    import redis
    from django.conf import settings

    return set(redis.Redis.from_url(settings.REDIS_URL).keys("sidus:user:*"))


def asgi_get(path: str, **headers: str) -> Any:
    """GET through the whole ASGI application, the cache layer included, from a sync test.

    Its database calls run on this thread (async_to_sync), so they see the test's transaction;
    as Django's test client does, it keeps request signals from closing that connection.
    """
    import httpx
    from asgiref.sync import async_to_sync
    from django.core import signals
    from django.db import close_old_connections

    from sidus.asgi import application

    async def get() -> Any:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.get(path, headers=headers)

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        return async_to_sync(get)()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def signup_token(signup: Any) -> str:
    """The secret of a pending signup's emailed link."""
    from users.mail import links

    return parse_qs(urlsplit(links.signup_link(signup)).query)["token"][0]


def limits(**rates: str) -> Any:
    """override_settings for RATE_LIMITS, the defaults for every action not named.

    django-ratelimit's windows are fixed, not sliding: a count restarts when its window ends. A
    limit a test counts up to is given a day's window (1d), so that no window ends mid-test."""
    from django.conf import settings
    from django.test import override_settings

    return override_settings(RATE_LIMITS={**settings.RATE_LIMITS, **rates})


def assert_429(response: Any) -> None:
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) >= 1
    assert "Too many requests" in response.json()["detail"] or "throttled" in response.json()["detail"]
