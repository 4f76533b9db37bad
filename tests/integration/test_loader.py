"""The miss loader: a miss read on the event loop gives the very answer Django gives."""
import asyncio

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from tests.support import auser_factory
from users import accounts
from users.runtime import current

pytestmark = pytest.mark.django_db(transaction=True)


def without(headers, *names):
    return {k: v for k, v in headers.items() if k not in names}


make = auser_factory


async def test_after_djangos_first_answer_misses_are_loaded_with_djangos_bytes_and_headers(loading, asgi_client):
    first, second = await make("first", bio="one"), await make("second", bio="twö ✓", first_name="Ada")
    assert (await asgi_client.get(f"/api/v1/users/{first.pk}/")).headers["x-cache"] == "MISS"  # Django
    assert current().templates.get(("user-detail", False))  # its headers are the template now

    calls = {"n": 0}
    from sidus.asgi import application as edge

    django_app = edge.django

    async def counting(scope, receive, send):
        calls["n"] += 1
        return await django_app(scope, receive, send)

    edge.django = counting
    try:
        loaded = await asgi_client.get(f"/api/v1/users/{second.pk}/")
    finally:
        edge.django = django_app
    assert calls["n"] == 0 and loaded.headers["x-cache"] == "MISS"

    django = await sync_to_async(APIClient().get)(f"/api/v1/users/{second.pk}/")
    assert loaded.content == django.content
    assert without(loaded.headers, "x-cache") == {k.lower(): v for k, v in django.headers.items()}
    again = await asgi_client.get(f"/api/v1/users/{second.pk}/")
    assert again.headers["x-cache"] == "L2" and again.content == loaded.content


async def test_misses_of_one_turn_share_one_query_each_id_once_and_each_gets_its_own_answer(
        loading, asgi_client, monkeypatch):
    users = [await make(f"batch{index}", bio=f"bio {index}") for index in range(8)]
    gone = await make("batch-gone")
    await sync_to_async(accounts.user_soft_delete)(user=gone)
    await asgi_client.get(f"/api/v1/users/{users[0].pk}/")  # Django's first answer: the template
    db = current().db
    connection, queries = db.connection, []

    def counted():
        queries.append(1)
        return connection()

    monkeypatch.setattr(db, "connection", counted)
    ids = [user.pk for user in users] * 3 + [gone.pk, 987654]  # a storm on each, an unknown, a deleted
    loaded = await asyncio.gather(*(loading.load(pk, False) for pk in ids))
    assert len(queries) == 1
    assert loaded[-2:] == [None, None]  # Django answers those (404)
    for user, answer in zip(users * 3, loaded):
        django = await sync_to_async(APIClient().get)(f"/api/v1/users/{user.pk}/")
        assert answer.body == django.content and answer.etag.decode() == django.headers["ETag"]


async def test_unknown_and_deleted_users_go_to_django_for_the_404(loading, asgi_client):
    alive, gone = await make("alive"), await make("gone")
    await asgi_client.get(f"/api/v1/users/{alive.pk}/")
    await sync_to_async(accounts.user_soft_delete)(user=gone)
    for pk in (gone.pk, 987654):
        response = await asgi_client.get(f"/api/v1/users/{pk}/")
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}


async def test_when_the_loader_fails_django_answers(loading, asgi_client):
    one, two = await make("one"), await make("two")
    await asgi_client.get(f"/api/v1/users/{one.pk}/")
    await current().db.pool.close()  # every connection attempt now fails
    response = await asgi_client.get(f"/api/v1/users/{two.pk}/")
    assert response.status_code == 200 and response.json()["username"] == "two"


def _database_time_zone(zone: str | None) -> None:
    from django.db import connection

    name = connection.ops.quote_name(connection.settings_dict["NAME"])
    with connection.cursor() as cursor:  # Django binds parameters client-side: a literal here
        if zone:
            cursor.execute(f"ALTER DATABASE {name} SET TimeZone = %s", [zone])
        else:
            cursor.execute(f"ALTER DATABASE {name} RESET TimeZone")


async def test_the_loop_pool_speaks_djangos_time_zone_whatever_the_servers(loading):
    """A server in another zone: the edge's `updated_at`, and so its ETags, are still Django's."""
    from django.db import connection

    await sync_to_async(_database_time_zone)("Asia/Tokyo")
    try:
        await current().db.stop()
        await current().db.start()  # new connections, which the server would put in Tokyo
        async with current().db.connection() as conn:
            zone = (await (await conn.execute("SHOW TimeZone")).fetchone())[0]
        assert zone == connection.timezone_name == "UTC"
    finally:
        await sync_to_async(_database_time_zone)(None)
