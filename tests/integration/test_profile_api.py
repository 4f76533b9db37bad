"""The profile's API as a client meets it, through the whole ASGI application with the edge in front,
and through the same project with no fast path (`Edge(..., routes=())`, every answer Django's):
each story must read the same both ways, as allauth's headless tests run with each of its clients.
"""
import httpx
import pytest
from asgiref.sync import sync_to_async

from sidus.edge import Edge
from tests.support import PASSWORD, abearer, auser_factory

pytestmark = pytest.mark.django_db(transaction=True)

USERS = "/api/v1/users/"


@pytest.fixture(params=["edge", "django"])
async def client(request, loading, listening):
    """A client of the project with its edge (`edge`), or of Django alone behind the same request rules."""
    from sidus.asgi import application, django_application

    app = application if request.param == "edge" else Edge(django_application, routes=())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        client.edge = request.param == "edge"
        yield client


async def test_anyone_reads_a_public_profile_and_its_etag_answers_304(client):
    ada = await auser_factory("ada", first_name="Ada", bio="Analytical")
    first = await client.get(f"{USERS}{ada.pk}/")
    again = await client.get(f"{USERS}{ada.pk}/")
    assert first.status_code == again.status_code == 200
    assert first.json() == {"id": ada.pk, "username": "ada", "first_name": "Ada", "last_name": "",
                            "bio": "Analytical", "date_joined": first.json()["date_joined"]}
    assert first.content == again.content and first.headers["etag"] == again.headers["etag"]
    assert again.headers.get("x-cache") == ("L1" if client.edge else None)  # only the edge has a cache
    unchanged = await client.get(f"{USERS}{ada.pk}/", headers={"If-None-Match": first.headers["etag"]})
    assert unchanged.status_code == 304 and unchanged.content == b""


async def test_the_owner_changes_the_profile_and_every_reader_sees_it(client):
    ada = await auser_factory("grace", bio="COBOL")
    await client.get(f"{USERS}{ada.pk}/")  # held by whichever answers
    for bio in ("compilers", "nanoseconds"):  # Django answers the first PATCH, the edge may the next
        changed = await client.patch(f"{USERS}me/", json={"bio": bio, "first_name": "Grace"},
                                     headers=await abearer(ada))
        assert changed.status_code == 200 and changed.json()["bio"] == bio
        assert changed.json()["email"] == "grace@example.com"  # the private representation
        read = await client.get(f"{USERS}{ada.pk}/")
        assert read.json()["bio"] == bio and read.json()["first_name"] == "Grace"


async def test_a_profile_changes_only_with_its_owners_token(client):
    ada, eve = await auser_factory("owner"), await auser_factory("other")
    assert (await client.patch(f"{USERS}me/", json={"bio": "x"})).status_code == 401
    assert (await client.patch(f"{USERS}{ada.pk}/", json={"bio": "x"}, headers=await abearer(eve))).status_code == 403
    forged = {"Authorization": "Bearer not-a-token"}
    assert (await client.patch(f"{USERS}me/", json={"bio": "x"}, headers=forged)).status_code == 401
    await sync_to_async(ada.refresh_from_db)()
    assert ada.bio != "x"


async def test_bad_input_is_a_field_level_400_and_changes_nothing(client):
    ada = await auser_factory("careful", bio="kept")
    headers = await abearer(ada)
    for body, field in (({"bio": "x" * 501}, "bio"), ({"bio": 12}, "bio"), ({"is_staff": True}, "is_staff")):
        refused = await client.patch(f"{USERS}me/", json=body, headers=headers)
        assert refused.status_code == 400 and field in refused.json()
    assert (await client.get(f"{USERS}{ada.pk}/")).json()["bio"] == "kept"


async def test_unknown_and_impossible_ids_are_404s(client):
    for path in ("999999/", "0/", "05/", "9" * 30 + "/"):
        missing = await client.get(f"{USERS}{path}")
        assert missing.status_code == 404 and missing.json() == {"detail": "Not found."}


async def test_register_then_log_in_then_read_my_own_profile(client):
    created = await client.post(USERS, json={"username": "newcomer", "email": "new@example.com", "password": PASSWORD})
    assert created.status_code == 201
    pair = await client.post("/api/v1/auth/token/", json={"username": "newcomer", "password": PASSWORD})
    me = await client.get(f"{USERS}me/", headers={"Authorization": f"Bearer {pair.json()['access']}"})
    assert me.status_code == 200 and me.json()["email"] == "new@example.com"
