"""The guard of the edge: Django is its oracle.

Hypothesis makes requests (methods, odd paths and ids, repeated and odd headers, charsets,
conditional headers, chunked or sized bodies of every kind, with or without a valid token) and
each goes to the whole project and to the same project with no fast path (`Edge(..., routes=())`:
the same request model and body rules, every answer Django's). Status, body, headers (but for
DIFFERENT, which change with the clock or name the tier) and the user's row must be equal.

The clock is held still for each request (`django.utils.timezone.now`), so that a write made twice
stores the same `updated_at` and the ETags agree. 500 examples with a fixed seed in the suite;
DIFFERENTIAL_EXAMPLES=5000 for a longer run.
"""
import asyncio
import datetime
import json
import os
import re

import httpx
import pytest
from asgiref.sync import sync_to_async
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sidus.edge import Edge
from tests.support import PASSWORD
from users import cache
from users.auth.tokens import token_pair
from users.models import User, UserEvent

pytestmark = [
    pytest.mark.django_db(transaction=True), pytest.mark.slow,
    # Hypothesis compares the global `random` state before and after each draw; channels-redis takes
    # every message's prefix from it (random.getrandbits), and the listener's probes are sent from
    # another thread while Hypothesis draws. Its own comment names this thread race.
    pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies"),
]

EXAMPLES = int(os.environ.get("DIFFERENTIAL_EXAMPLES", "500"))
DIFFERENT = {"date", "expires", "x-cache"}
USERS = "/api/v1/users/"

deep = "[" * 1000 + "]" * 1000
BODIES = st.one_of(
    st.fixed_dictionaries({}, optional={
        "bio": st.text(max_size=30) | st.integers() | st.none() | st.just("x" * 501),
        "first_name": st.text(max_size=10) | st.just(["a"]),
        "last_name": st.text(alphabet="ab\x00", max_size=5),
        "is_staff": st.booleans(),
        "id": st.integers(),
        "username": st.sampled_from(["renamed", "UPPER", "admin", ""]),
        "email": st.sampled_from(["new@example.com", "not-an-email"]),
        "unknown": st.just(1),
    }).map(lambda body: json.dumps(body).encode()),
    st.sampled_from([
        b"", b"{", b"null", b"[]", b'"bio"', b'{"bio": "a", "bio": "b"}', b'{"bio": "\\ud800"}',
        b'{"bio": "nul \\u0000"}', b'{"bio": ' + deep.encode() + b"}", b'{"bio": "caf\xe9"}', b"\xff\xfe",
        b'{"bio": NaN}', b'{"bio": "x"}' + b" " * 70_000, "{\"bio\": \"ünï\"}".encode("latin-1"),
    ]),
)
CONTENT_TYPES = st.sampled_from([
    None, "application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
    "application/json; charset=bogus", "text/plain", "APPLICATION/JSON", "*/*", "application/x-www-form-urlencoded",
])
ACCEPTS = st.lists(st.sampled_from(["application/json", "text/html", "*/*", "application/json; indent=4",
                                    "text/plain"]), max_size=2)
HOSTS = st.lists(st.sampled_from(["localhost", "evil.example", "127.0.0.1:8000"]), min_size=1, max_size=2)


@st.composite
def requests(draw, user_id: int, other_id: int):
    method = draw(st.sampled_from(["GET", "HEAD", "PATCH", "PATCH", "PATCH", "PUT", "DELETE", "POST"]))
    segment = draw(st.sampled_from([str(user_id), str(other_id), "me", "0", f"0{user_id}", f"+{user_id}",
                                    "9" * 19, "9" * 20, "x"]))
    path = f"{USERS}{segment}/" if draw(st.booleans()) or segment == "me" else f"{USERS}{segment}"
    query = draw(st.sampled_from(["", "", "format=json", "x=1"]))
    headers = [("host", host) for host in draw(HOSTS)]
    headers += [("accept", accept) for accept in draw(ACCEPTS)]
    if (content_type := draw(CONTENT_TYPES)) is not None:
        headers.append(("content-type", content_type))
    auth = draw(st.sampled_from(["mine", "mine", "other", "garbage", None]))
    if draw(st.booleans()):
        headers.append(("if-match", draw(st.sampled_from(["*", '"stale"']))))
    if draw(st.booleans()):
        headers.append(("if-none-match", draw(st.sampled_from(["*", '"stale"']))))
    body = draw(BODIES) if method in ("PATCH", "PUT", "POST", "DELETE") else b""
    return {"method": method, "path": path, "query": query, "headers": headers, "auth": auth, "body": body,
            "chunked": bool(body) and draw(st.booleans())}


settings_for_examples = hypothesis_settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def stacks(loading, listening):
    from sidus.asgi import application, django_application

    return application, Edge(django_application, routes=())


async def send(app, spec: dict, tokens: dict[str, str]) -> httpx.Response:
    headers = list(spec["headers"])
    if spec["auth"] is not None:
        headers.append(("authorization", f"Bearer {tokens[spec['auth']]}"))
    body = spec["body"]
    if spec["chunked"]:
        async def chunks():
            for start in range(0, len(body), 7):
                yield body[start:start + 7]

        content = chunks()
    else:
        content = body
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        url = spec["path"] + (f"?{spec['query']}" if spec["query"] else "")
        request = client.build_request(spec["method"], url, content=content)
        request.headers = httpx.Headers([(k, v) for k, v in request.headers.multi_items() if k.lower() != "host"]
                                        + headers)
        return await client.send(request)


def row(user_id: int) -> dict:
    """The user's row, and the events it recorded (ids aside: each write makes its own)."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return {}
    events = UserEvent.objects.filter(user_id=user_id).order_by("sequence")
    events = events.values_list("sequence", "type", "time", "data")
    return {**{field.attname: getattr(user, field.attname) for field in User._meta.concrete_fields},
            "events": list(events)}


def restore(user_id: int, saved: dict) -> None:
    """The row as saved, and the events recorded since forgotten: as if the request never came."""
    UserEvent.objects.filter(user_id=user_id, sequence__gt=saved["event_sequence"]).delete()
    User.objects.filter(pk=user_id).update(**{k: v for k, v in saved.items() if k not in ("id", "events")})
    cache.invalidate_users([user_id])


def comparable(response: httpx.Response) -> tuple:
    headers = sorted((k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in DIFFERENT)
    # The browsable API's pages carry a fresh CSRF token each, and show the Expires header (the wall
    # clock's second): Django's own two answers differ there too.
    body = re.sub(rb'("csrfToken": "|name="csrfmiddlewaretoken" value=")[^"]*', rb"\1", response.content)
    body = re.sub(rb"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT", b"<http date>", body)
    return response.status_code, body, headers


def difference(edge: tuple, django: tuple) -> str:
    """Where two answers part: the statuses and headers, and the bodies from their first difference."""
    (status, body, headers), (django_status, django_body, django_headers) = edge, django
    at = next((n for n, (a, b) in enumerate(zip(body, django_body)) if a != b), min(len(body), len(django_body)))
    return (f"  edge:   {status} {headers}\n  django: {django_status} {django_headers}\n"
            f"  bodies from byte {at}: {body[at - 40:at + 160]!r}\n"
            f"                   {django_body[at - 40:at + 160]!r}")


async def test_the_edge_answers_as_django_does(stacks, settings, monkeypatch):
    settings.RATE_LIMITS_ENABLED = False
    full, django_only = stacks
    user = await sync_to_async(User.objects.create_user)("differential", "d@example.com", PASSWORD, bio="bio")
    other = await sync_to_async(User.objects.create_user)("other", "o@example.com", PASSWORD)
    tokens = {"mine": (await sync_to_async(token_pair)(user))["access"],
              "other": (await sync_to_async(token_pair)(other))["access"], "garbage": "not.a.token"}
    loop = asyncio.get_running_loop()
    clock = {"now": datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)}
    monkeypatch.setattr("django.utils.timezone.now", lambda: clock["now"])
    failures: list[str] = []

    async def one(spec: dict) -> None:
        saved = await sync_to_async(row)(user.pk)
        clock["now"] += datetime.timedelta(seconds=1)
        answers, rows = [], []
        for app in (full, django_only):
            answers.append(comparable(await send(app, spec, tokens)))
            rows.append(await sync_to_async(row)(user.pk))
            await sync_to_async(restore)(user.pk, saved)
        if answers[0] != answers[1] or rows[0] != rows[1]:
            failures.append(f"{spec}\n{difference(*answers)}\n  rows equal: {rows[0] == rows[1]}")

    @settings_for_examples
    @given(requests(user.pk, other.pk))
    def check(spec: dict) -> None:
        asyncio.run_coroutine_threadsafe(one(spec), loop).result(timeout=30)

    await asyncio.to_thread(check)
    assert not failures, f"{len(failures)} of {EXAMPLES} differ; the first:\n" + "\n".join(failures[:3])
