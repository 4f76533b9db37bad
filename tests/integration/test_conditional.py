"""ETags on public profiles: If-None-Match gets a 304 on every tier, If-Match protects PATCH."""
import pytest
from asgiref.sync import sync_to_async

from tests.support import PASSWORD, asgi_get, bearer
from users import cache
from users.models import User
from users.runtime import current

pytestmark = pytest.mark.django_db

USERS = "/api/v1/users/"


def test_public_json_carries_a_strong_etag_and_other_renderings_none(api_client, user):
    plain = api_client.get(f"{USERS}{user.pk}/")
    assert plain["ETag"].startswith('"') and not plain["ETag"].startswith("W/")
    assert api_client.get(f"{USERS}{user.pk}/", {"format": "json"})["ETag"] == plain["ETag"]
    assert "ETag" not in api_client.get(f"{USERS}{user.pk}/", HTTP_ACCEPT="text/html")
    assert "ETag" not in api_client.get(f"{USERS}{user.pk}/", HTTP_ACCEPT="application/json; indent=4")


def test_django_answers_304_when_the_asgi_layer_is_not_in_front(api_client, user):
    etag = api_client.get(f"{USERS}{user.pk}/")["ETag"]
    response = api_client.get(f"{USERS}{user.pk}/", {"format": "json"}, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304 and response.content == b"" and response["ETag"] == etag
    assert api_client.get(f"{USERS}{user.pk}/", HTTP_IF_NONE_MATCH='"stale"').status_code == 200


def test_any_write_changes_the_etag_even_one_the_public_bytes_do_not_show(api_client, user):
    before = api_client.get(f"{USERS}{user.pk}/")
    user.email = "elsewhere@example.com"
    user.save()
    after = api_client.get(f"{USERS}{user.pk}/")
    assert after.content == before.content and after["ETag"] != before["ETag"]


@pytest.mark.django_db(transaction=True)
async def test_304_on_every_tier_with_the_same_headers(listening, asgi_client):
    user = await sync_to_async(User.objects.create_user)("tags", "tags@example.com", PASSWORD)
    url = f"{USERS}{user.pk}/"
    miss = await asgi_client.get(url)
    etag = miss.headers["etag"]
    answers = {}
    for tier in ("L1", "L2", "MISS"):
        if tier == "L2":
            current().local_cache.clear()
        if tier == "MISS":
            await sync_to_async(cache.invalidate_users)([user.pk])
        answers[tier] = await asgi_client.get(url, headers={"If-None-Match": f'W/"other", {etag}'})
    for tier, answer in answers.items():
        assert answer.status_code == 304 and answer.content == b"", tier
        assert answer.headers["x-cache"] == tier
        assert answer.headers["etag"] == etag and "content-type" not in answer.headers
    headers = [{k: v for k, v in a.headers.items() if k != "x-cache"} for a in answers.values()]
    assert headers[0] == headers[1] == headers[2]
    assert (await asgi_client.get(url, headers={"If-None-Match": "*"})).status_code == 304
    stale = await asgi_client.get(url, headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.content == miss.content


@pytest.mark.django_db(transaction=True)
async def test_head_gets_the_etag_and_a_304_too(listening, asgi_client):
    user = await sync_to_async(User.objects.create_user)("head", "head@example.com", PASSWORD)
    etag = (await asgi_client.get(f"{USERS}{user.pk}/")).headers["etag"]
    head = await asgi_client.head(f"{USERS}{user.pk}/", headers={"If-None-Match": etag})
    assert head.status_code == 304 and head.headers["etag"] == etag


# --- If-Match on PATCH ----------------------------------------------------------------------------


def patch(client, user, etag, **data):
    return client.patch(f"{USERS}{user.pk}/", data, format="json", HTTP_IF_MATCH=etag, **bearer(user))


def test_patch_with_the_current_public_or_private_etag_passes_and_tags_the_new_version(api_client, user):
    public = asgi_get(f"{USERS}{user.pk}/").headers["ETag"]
    first = patch(api_client, user, public, bio="tab one")
    assert first.status_code == 200 and first["ETag"] != public
    private = api_client.get(f"{USERS}me/", **bearer(user))["ETag"]
    assert private == first["ETag"]
    second = patch(api_client, user, private, bio="tab one again")
    assert second.status_code == 200


def test_a_stale_etag_is_412_and_writes_nothing(api_client, user):
    stale = api_client.get(f"{USERS}{user.pk}/")["ETag"]
    assert patch(api_client, user, stale, bio="tab one").status_code == 200
    response = patch(api_client, user, stale, bio="tab two", last_name="Two")
    assert response.status_code == 412 and "changed since you read it" in response.json()["detail"]
    user.refresh_from_db()
    assert user.bio == "tab one" and user.last_name != "Two"


def test_if_match_star_passes_and_a_weak_tag_never_matches(api_client, user):
    assert patch(api_client, user, "*", bio="any").status_code == 200
    current = api_client.get(f"{USERS}{user.pk}/")["ETag"]
    assert patch(api_client, user, f"W/{current}", bio="weak").status_code == 412


def test_if_match_on_me_and_without_if_match_nothing_changes(api_client, user):
    stale = api_client.get(f"{USERS}me/", **bearer(user))["ETag"]
    user.bio = "changed elsewhere"
    user.save()
    response = api_client.patch(f"{USERS}me/", {"bio": "mine"}, format="json", HTTP_IF_MATCH=stale, **bearer(user))
    assert response.status_code == 412
    assert api_client.patch(f"{USERS}me/", {"bio": "mine"}, format="json", **bearer(user)).status_code == 200
