"""The lean PATCH: once Django answered one, the edge writes names and bio itself, with
Django's very bytes and headers, and leaves every refusal and every other change to Django."""
import asyncio
import time

import pytest
import redis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from tests.support import abearer, auser_factory, bearer
from users import accounts
from users.auth.tokens import token_pair
from users.cache import user_cache_key
from users.models import User
from users.runtime import current

pytestmark = pytest.mark.django_db(transaction=True)

USERS = "/api/v1/users/"
VARYING = ("date", "expires", "etag", "content-length")  # per answer; the rest must be Django's


@pytest.fixture
def to_django(asgi_client, loading, listening):
    """The paths of the requests that reached Django, through the whole ASGI app."""
    from sidus.asgi import application as edge

    django_app = edge.django
    current().templates.clear()
    calls: list[str] = []

    async def counting(scope, receive, send):
        calls.append(f"{scope['method']} {scope['path']}")
        return await django_app(scope, receive, send)

    edge.django = counting
    yield calls
    edge.django = django_app
    current().templates.clear()


make = auser_factory


auth = abearer


async def refreshed(user: User) -> User:
    await user.arefresh_from_db()
    return user


def without(headers, *names) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in headers.items() if k.lower() not in names]


async def test_after_djangos_first_answer_the_layer_writes_with_djangos_bytes_and_headers(asgi_client, to_django):
    ada, bob = await make("ada"), await make("bob", first_name="Bob")
    first = await asgi_client.patch(f"{USERS}me/", json={"bio": "one"}, headers=await auth(ada))
    assert first.status_code == 200 and to_django == [f"PATCH {USERS}me/"]

    lean = await asgi_client.patch(f"{USERS}me/", json={"bio": " twö ✓ ", "last_name": "B."}, headers=await auth(bob))
    assert lean.status_code == 200 and len(to_django) == 1  # Django was not asked
    bob = await refreshed(bob)
    assert (bob.bio, bob.last_name, bob.first_name) == ("twö ✓", "B.", "Bob")  # trimmed, as DRF trims

    # Django's answer to the same change: the same body, the same headers in the same order.
    django = await sync_to_async(APIClient().patch)(
        f"{USERS}me/", {"bio": " twö ✓ ", "last_name": "B."}, format="json", **await sync_to_async(bearer)(bob)
    )
    assert lean.content == django.content
    assert without(lean.headers, *VARYING) == without(django.headers, *VARYING)
    assert [k for k in lean.headers] == [k.lower() for k in django.headers]


async def test_the_lean_answers_etag_is_the_one_django_checks_for_if_match(asgi_client, to_django):
    ada = await make("ada")
    await asgi_client.patch(f"{USERS}me/", json={"bio": "one"}, headers=await auth(ada))
    lean = await asgi_client.patch(f"{USERS}me/", json={"bio": "two"}, headers=await auth(ada))
    assert len(to_django) == 1
    me = await asgi_client.get(f"{USERS}me/", headers=await auth(ada))
    assert me.headers["etag"] == lean.headers["etag"]
    # If-Match goes to Django, which locks the row to compare: the lean tag is current there.
    again = await asgi_client.patch(f"{USERS}me/", json={"bio": "three"}, headers={
        **await auth(ada), "If-Match": lean.headers["etag"]})
    assert again.status_code == 200 and to_django[-1] == f"PATCH {USERS}me/"
    stale = await asgi_client.patch(f"{USERS}me/", json={"bio": "four"}, headers={
        **await auth(ada), "If-Match": lean.headers["etag"]})
    assert stale.status_code == 412 and (await refreshed(ada)).bio == "three"


async def test_the_detail_route_learns_its_own_headers_and_someone_elses_id_is_djangos(asgi_client, to_django):
    ada, bob = await make("ada"), await make("bob")
    url = f"{USERS}{ada.pk}/"
    assert (await asgi_client.patch(url, json={"bio": "one"}, headers=await auth(ada))).status_code == 200
    lean = await asgi_client.patch(url, json={"bio": "two"}, headers=await auth(ada))
    assert lean.status_code == 200 and lean.json()["bio"] == "two" and len(to_django) == 1
    assert "DELETE" not in lean.headers["allow"]  # /users/me/ allows DELETE, /users/{id}/ does not
    forbidden = await asgi_client.patch(url, json={"bio": "mine now"}, headers=await auth(bob))
    assert forbidden.status_code == 403 and len(to_django) == 2
    assert (await refreshed(ada)).bio == "two"


async def test_a_lean_write_reaches_both_cache_tiers(asgi_client, to_django):
    ada = await make("ada", bio="before")
    await asgi_client.patch(f"{USERS}me/", json={"first_name": "Ada"}, headers=await auth(ada))
    url = f"{USERS}{ada.pk}/"
    await asgi_client.get(url)
    assert (await asgi_client.get(url)).headers["x-cache"] == "L1"
    assert (await asgi_client.patch(f"{USERS}me/", json={"bio": "after"}, headers=await auth(ada))).status_code == 200
    assert to_django.count(f"PATCH {USERS}me/") == 1 and current().local_cache.get(ada.pk) is None
    fresh = await asgi_client.get(url)  # the writer kept its new public answer in L2
    assert fresh.json()["bio"] == "after" and fresh.headers["x-cache"] == "L2"

    redis.Redis.from_url(settings.REDIS_URL).delete(user_cache_key(ada.pk))
    current().local_cache.clear()
    read = await asgi_client.get(url)  # the same answer, read from PostgreSQL
    assert read.headers["x-cache"] == "MISS" and read.content == fresh.content
    assert without(read.headers, "x-cache", "date") == without(fresh.headers, "x-cache", "date")


async def test_every_refusal_and_every_other_change_is_djangos(asgi_client, to_django):
    ada = await make("ada", bio="kept")
    headers, refresh = await auth(ada), (await sync_to_async(token_pair)(ada))["refresh"]
    assert (await asgi_client.patch(f"{USERS}me/", json={"bio": "kept"}, headers=headers)).status_code == 200
    asked = len(to_django)

    cases = [
        ({"bio": "x" * 501}, headers, 400, {"bio"}),
        ({"bio": 5}, headers, 400, {"bio"}),
        ({"bio": "fine", "is_staff": True}, headers, 400, {"is_staff"}),
        ({"first_name": None}, headers, 400, {"first_name"}),
        ({"bio": "no token"}, {}, 401, {"detail"}),
        ({"bio": "bad token"}, {"Authorization": "Bearer not.a.token"}, 401, {"detail", "code", "messages"}),
        ({"bio": "refresh token"}, {"Authorization": f"Bearer {refresh}"}, 401, None),
        ({"bio": "lower-case scheme"}, {"Authorization": headers["Authorization"].lower()}, 401, None),
    ]
    for body, with_headers, status, fields in cases:
        response = await asgi_client.patch(f"{USERS}me/", json=body, headers=with_headers)
        assert response.status_code == status, (body, response.text)
        assert fields is None or set(response.json()) == fields, response.text
        asked += 1
        assert len(to_django) == asked, body
    raw = [
        (b'{"bio": "text/plain"}', {"Content-Type": "text/plain"}, 415),
        (b'{"bio": "not json"', {"Content-Type": "application/json"}, 400),
        ('{"bio": "latin-1 é"}'.encode("latin-1"), {"Content-Type": "application/json"}, 400),
        (b'[{"bio": "a list"}]', {"Content-Type": "application/json"}, 400),
    ]
    for content, with_headers, status in raw:
        response = await asgi_client.patch(f"{USERS}me/", content=content, headers={**headers, **with_headers})
        assert response.status_code == status, (content, response.text)
        asked += 1
        assert len(to_django) == asked, content
    assert (await refreshed(ada)).bio == "kept"

    # Username and email changes have rules on other rows and emails to send: Django's.
    renamed = await asgi_client.patch(f"{USERS}me/", json={"username": "ada2", "bio": "renamed"}, headers=headers)
    assert renamed.status_code == 200 and len(to_django) == asked + 1
    assert ((await refreshed(ada)).username, ada.bio) == ("ada2", "renamed")
    plain = await asgi_client.patch(f"{USERS}me/?format=json", json={"bio": "query"}, headers=headers)
    indented = await asgi_client.patch(f"{USERS}me/", json={"bio": "indent"},
                                       headers={**headers, "Accept": "application/json; indent=4"})
    assert plain.status_code == indented.status_code == 200 and len(to_django) == asked + 3
    assert b"\n    " in indented.content


async def test_a_token_that_died_since_it_was_issued_is_djangos_401(asgi_client, to_django):
    ada, bob, cyd = await make("ada"), await make("bob"), await make("cyd")
    ada_auth, bob_pair, cyd_auth = await auth(ada), await sync_to_async(token_pair)(bob), await auth(cyd)
    assert (await asgi_client.patch(f"{USERS}me/", json={"bio": "learn"}, headers=ada_auth)).status_code == 200
    asked = len(to_django)

    await sync_to_async(accounts.password_change)(user=ada, new_password="an0ther-Passw0rd")
    logout = await asgi_client.post("/api/v1/auth/token/blacklist/", json={"refresh": bob_pair["refresh"]})
    assert logout.status_code == 200
    await sync_to_async(accounts.user_soft_delete)(user=cyd)
    asked += 1  # the logout
    for headers in (ada_auth, {"Authorization": f"Bearer {bob_pair['access']}"}, cyd_auth):
        response = await asgi_client.patch(f"{USERS}me/", json={"bio": "stale token"}, headers=headers)
        assert response.status_code == 401, response.text
        asked += 1
        assert len(to_django) == asked
    for user in (ada, bob, cyd):
        assert (await refreshed(user)).bio != "stale token"


async def test_a_token_from_before_a_soft_delete_stays_dead_after_a_restore(asgi_client, to_django):
    ada = await make("ada")
    ada_auth = await auth(ada)
    assert (await asgi_client.patch(f"{USERS}me/", json={"bio": "learn"}, headers=ada_auth)).status_code == 200
    await sync_to_async(accounts.user_soft_delete)(user=ada)
    await sync_to_async(accounts.user_restore)(user=ada)

    response = await asgi_client.patch(f"{USERS}me/", json={"bio": "revived"}, headers=ada_auth)
    assert response.status_code == 401 and len(to_django) == 2  # the lean path let Django refuse it
    assert (await refreshed(ada)).bio == "learn"
    fresh = await asgi_client.patch(f"{USERS}me/", json={"bio": "back"}, headers=await auth(await refreshed(ada)))
    assert fresh.status_code == 200 and len(to_django) == 2


async def test_the_update_rate_limit_counts_lean_writes_too(asgi_client, to_django, settings):
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "update": "3/1d/user"}
    ada, bob = await make("ada"), await make("bob")
    for bio in ("one", "two", "three"):  # Django's, then two lean ones
        assert (await asgi_client.patch(f"{USERS}me/", json={"bio": bio}, headers=await auth(ada))).status_code == 200
    assert len(to_django) == 1
    over = await asgi_client.patch(f"{USERS}me/", json={"bio": "four"}, headers=await auth(ada))
    assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1 and len(to_django) == 2
    assert (await refreshed(ada)).bio == "three"
    assert (await asgi_client.patch(f"{USERS}me/", json={"bio": "b"}, headers=await auth(bob))).status_code == 200


async def test_a_write_that_commits_between_the_lean_read_and_write_wins_and_django_makes_the_patch(
        asgi_client, to_django, settings, monkeypatch):
    """The lean write applies only to the row version its token was checked on: a change committed in
    between (here, while the rate limit is counted) leaves the write undone, and Django makes it."""
    from users import ratelimits
    from users.models import UserEvent

    ada = await make("ada")
    headers = await auth(ada)
    assert (await asgi_client.patch(f"{USERS}me/", json={"bio": "learn"}, headers=headers)).status_code == 200
    settings.RATE_LIMITS_ENABLED = True
    hit, between = ratelimits.hit, []

    def hit_and_write(request, action, key=None):
        if not between:  # in a pool thread: its own connection, closed after
            between.append(accounts.user_update(user=User.objects.get(pk=ada.pk), data={"first_name": "Between"}))
            connection.close()
        return hit(request, action, key)

    monkeypatch.setattr(ratelimits, "hit", hit_and_write)
    response = await asgi_client.patch(f"{USERS}me/", json={"bio": "mine"}, headers=headers)
    assert response.status_code == 200 and len(to_django) == 2  # the lean one gave way
    assert (response.json()["first_name"], response.json()["bio"]) == ("Between", "mine")
    changed = [event.data["changed"] async for event in
               UserEvent.objects.filter(user_id=ada.pk, type="user.updated").order_by("sequence")]
    assert changed == [["bio"], ["first_name"], ["bio"]]


async def test_the_lean_patches_of_one_turn_read_their_rows_in_one_query_and_each_writes_its_own(
        asgi_client, to_django, monkeypatch):
    users = [await make(f"turn{n}") for n in range(6)]
    await asgi_client.patch(f"{USERS}me/", json={"bio": "learn"}, headers=await auth(users[0]))  # Django's
    rows, batches = current().loader._rows, []
    read = rows._run

    async def counted(keys):
        batches.append(len(keys))
        return await read(keys)

    monkeypatch.setattr(rows, "_run", counted)

    async def admit(user):
        return True

    written = await asyncio.gather(*(
        accounts.profile_update_async(user_id=user.pk, data={"bio": f"bio of {user.username}"}, admit=admit)
        for user in [*users, users[0]]))  # the first user twice: one of its two writes gives way
    assert batches == [6]  # six rows, the first user's once
    assert [user.bio for user in written[1:6]] == [f"bio of {user.username}" for user in users[1:]]
    assert sorted([written[0] is None, written[6] is None]) == [False, True]
    for user in users:
        assert (await refreshed(user)).bio == f"bio of {user.username}"


async def test_with_its_database_pool_down_django_writes(asgi_client, to_django):
    ada = await make("ada")
    await asgi_client.patch(f"{USERS}me/", json={"bio": "learn"}, headers=await auth(ada))
    await current().db.pool.close()  # every connection attempt now fails
    started = time.monotonic()
    response = await asgi_client.patch(f"{USERS}me/", json={"bio": "by django"}, headers=await auth(ada))
    assert response.status_code == 200 and len(to_django) == 2 and time.monotonic() - started < 2
    assert (await refreshed(ada)).bio == "by django"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
async def test_a_body_over_the_limit_is_refused_before_it_is_read(asgi_client, to_django):
    ada = await make("ada")
    await asgi_client.patch(f"{USERS}me/", json={"bio": "learn"}, headers=await auth(ada))

    async def chunks():
        for _ in range(10):
            yield b" " * 500

    response = await asgi_client.patch(f"{USERS}me/", content=chunks(), headers={
        **await auth(ada), "Content-Type": "application/json"})
    assert response.status_code == 413 and len(to_django) == 1


async def test_a_lean_write_takes_no_thread_hop_but_to_count_a_rate_limit(asgi_client, to_django, hops, settings):
    ada = await make("ada")
    headers = await auth(ada)
    await asgi_client.patch(f"{USERS}me/", json={"bio": "learn"}, headers=headers)
    for enabled, expected in ((False, []), (True, ["SyncToAsync"])):
        settings.RATE_LIMITS_ENABLED = enabled
        hops.clear()
        assert (await asgi_client.patch(f"{USERS}me/", json={"bio": str(enabled)}, headers=headers)).status_code == 200
        assert hops == expected and len(to_django) == 1


@pytest.mark.parametrize("charset", ["bogus", "utf-9"])
async def test_an_unknown_charset_is_the_same_400_on_the_lean_patch_as_on_djangos(asgi_client, to_django, charset):
    ada = await make("ada")
    headers = {**await auth(ada), "Content-Type": f"application/json; charset={charset}"}
    await asgi_client.patch(f"{USERS}me/", json={"bio": "learnt"}, headers=await auth(ada))  # Django's, learnt
    lean = await asgi_client.patch(f"{USERS}me/", content=b'{"bio": "guessed"}', headers=headers)
    django = await sync_to_async(APIClient().patch)(f"{USERS}me/", b'{"bio": "guessed"}',
                                                    content_type=headers["Content-Type"],
                                                    HTTP_AUTHORIZATION=headers["Authorization"])
    assert lean.status_code == django.status_code == 400
    assert lean.json() == django.json() and "charset" in lean.json()["detail"]
    assert (await refreshed(ada)).bio == "learnt"


async def test_an_address_in_a_patch_is_the_same_400_on_both_paths_and_moves_nothing(asgi_client, to_django):
    ada = await make("ada")
    await asgi_client.patch(f"{USERS}me/", json={"bio": "learnt"}, headers=await auth(ada))  # Django's, learnt
    for body in ({"email": "thief@evil.test"}, {"email": "thief@evil.test", "bio": "x"}):
        lean = await asgi_client.patch(f"{USERS}me/", json=body, headers=await auth(ada))
        django = await sync_to_async(APIClient().patch)(f"{USERS}me/", body, format="json",
                                                        **await sync_to_async(bearer)(ada))
        assert lean.status_code == django.status_code == 400 and lean.json() == django.json()
        assert "/api/v1/auth/email/change/" in lean.json()["email"][0]
    assert (await refreshed(ada)).email == "ada@example.com"
