"""The HTTP contract of /api/v1/users/ and /api/v1/auth/, through DRF's sync test client."""
import re

import pytest
from django.contrib.auth.hashers import check_password

from tests import support
from tests.support import PASSWORD, bearer
from users.models import User

pytestmark = pytest.mark.django_db

USERS = "/api/v1/users/"
PUBLIC_KEYS = {"id", "username", "first_name", "last_name", "bio", "date_joined"}
PRIVATE_KEYS = PUBLIC_KEYS | {"email", "email_verified"}


def register(client, **overrides):
    """Grace, unless `overrides` say otherwise."""
    return support.register(client, **{"username": "grace", "email": "grace@example.com", "bio": "COBOL", **overrides})


# --- create -----------------------------------------------------------------------------------


def test_register_returns_private_representation_and_stores_hashed_password(api_client):
    response = register(api_client, first_name="Grace", last_name="Hopper")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == PRIVATE_KEYS
    assert body["email"] == "grace@example.com" and body["first_name"] == "Grace"
    stored = User.objects.get(pk=body["id"])
    assert stored.password != PASSWORD and check_password(PASSWORD, stored.password)
    assert PASSWORD not in response.content.decode()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"username": ""}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "123"}, "password"),
        ({"password": "password"}, "password"),
        ({"username": "x" * 151}, "username"),
        ({"bio": "x" * 501}, "bio"),
        ({"first_name": "x" * 151}, "first_name"),
        ({"username": "bad name!"}, "username"),
        ({"is_staff": True}, "is_staff"),
        ({"is_superuser": True}, "is_superuser"),
        ({"is_active": False}, "is_active"),
        ({"id": 99}, "id"),
        ({"date_joined": "2020-01-01T00:00:00Z"}, "date_joined"),
        ({"nickname": "gh"}, "nickname"),
    ],
)
def test_register_rejects_bad_field_with_400_naming_it(api_client, overrides, field):
    response = register(api_client, **overrides)

    assert response.status_code == 400
    assert field in response.json()
    assert not User.objects.exists()


@pytest.mark.parametrize("missing", ["username", "email", "password"])
def test_register_requires_field(api_client, missing):
    payload = {"username": "grace", "email": "grace@example.com", "password": PASSWORD}
    del payload[missing]
    response = api_client.post(USERS, payload, format="json")
    assert response.status_code == 400
    assert response.json()[missing] == ["This field is required."]


@pytest.mark.parametrize("field, value", [("username", "GRACE"), ("email", "Grace@Example.COM")])
def test_duplicate_username_or_email_is_409_whatever_the_case(api_client, field, value):
    assert register(api_client).status_code == 201
    other = {"username": "other", "email": "other@example.com", field: value}

    response = register(api_client, **other)

    assert response.status_code == 409
    assert response.json() == {field: [f"A user with that {field} already exists."]}
    assert User.objects.count() == 1


def test_a_taken_username_beside_another_bad_field_is_a_400_naming_both(api_client):
    assert register(api_client).status_code == 201
    response = register(api_client, email="not-an-email")
    assert response.status_code == 400
    assert set(response.json()) == {"username", "email"}


def test_malformed_json_is_400(api_client):
    response = api_client.post(USERS, b'{"username": ', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_non_object_body_is_400(api_client):
    response = api_client.post(USERS, [1, 2], format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


# --- retrieve ---------------------------------------------------------------------------------


def test_get_user_returns_public_representation_only(api_client, user):
    response = api_client.get(f"{USERS}{user.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == PUBLIC_KEYS
    assert body["username"] == user.username and body["bio"] == user.bio
    assert user.email not in response.content.decode()


def test_get_user_ignores_a_bad_token(api_client, user):
    response = api_client.get(f"{USERS}{user.pk}/", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 200


@pytest.mark.parametrize("pk", ["999999", "abc", "0", "99999999999999999999", "１２"])
def test_get_unknown_or_invalid_id_is_json_404(api_client, user, pk):
    response = api_client.get(f"{USERS}{pk}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_get_soft_deleted_user_is_404(api_client, user):
    from users.accounts import user_soft_delete

    user_soft_delete(user=user)
    assert api_client.get(f"{USERS}{user.pk}/").status_code == 404


def test_browsable_api_renders_html(api_client, user):
    response = api_client.get(f"{USERS}{user.pk}/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert user.username in response.content.decode()


# --- update -----------------------------------------------------------------------------------


def test_owner_can_patch_own_fields(api_client, user):
    response = api_client.patch(
        f"{USERS}{user.pk}/", {"bio": "Analytical engines", "first_name": "Augusta"}, format="json", **bearer(user)
    )

    assert response.status_code == 200, response.content
    assert set(response.json()) == PRIVATE_KEYS
    user.refresh_from_db()
    assert (user.bio, user.first_name, user.last_name) == ("Analytical engines", "Augusta", "Lovelace")


def test_patch_without_token_is_401(api_client, user):
    response = api_client.patch(f"{USERS}{user.pk}/", {"bio": "x"}, format="json")
    assert response.status_code == 401


def test_patch_with_invalid_token_is_401(api_client, user):
    response = api_client.patch(f"{USERS}{user.pk}/", {"bio": "x"}, format="json", HTTP_AUTHORIZATION="Bearer junk")
    assert response.status_code == 401


def test_patch_someone_else_is_403_and_changes_nothing(api_client, user, make_user):
    intruder = make_user()
    response = api_client.patch(f"{USERS}{user.pk}/", {"bio": "pwned"}, format="json", **bearer(intruder))

    assert response.status_code == 403
    user.refresh_from_db()
    assert user.bio != "pwned"


def test_patch_unknown_user_is_404(api_client, user):
    response = api_client.patch(f"{USERS}999999/", {"bio": "x"}, format="json", **bearer(user))
    assert response.status_code == 404


@pytest.mark.parametrize(
    "field, value",
    [("is_staff", True), ("is_superuser", True), ("is_active", False), ("password", "n3w-Passw0rd!"),
     ("id", 5), ("date_joined", "2020-01-01T00:00:00Z"), ("deleted_at", None), ("nickname", "x"),
     ("email_verified", True)],
)
def test_patch_refuses_fields_the_client_may_not_write(api_client, user, field, value):
    response = api_client.patch(f"{USERS}{user.pk}/", {field: value, "bio": "new"}, format="json", **bearer(user))

    assert response.status_code == 400
    assert field in response.json()
    user.refresh_from_db()
    assert not user.is_staff and not user.is_superuser and user.is_active and user.bio != "new"
    assert user.check_password(PASSWORD)


@pytest.mark.parametrize("email", ["thief@evil.test", "SAME"])
def test_patch_refuses_email_naming_it_and_where_it_changes(api_client, user, email):
    """A token alone never moves the account: the address changes with the password and a link."""
    before, bio = user.email, user.bio
    email = before.upper() if email == "SAME" else email
    response = api_client.patch(f"{USERS}{user.pk}/", {"email": email, "bio": "new"}, format="json", **bearer(user))
    assert response.status_code == 400
    assert list(response.json()) == ["email"] and "/api/v1/auth/email/change/" in response.json()["email"][0]
    user.refresh_from_db()
    assert (user.email, user.bio) == (before, bio)


def test_patch_overlong_bio_is_400(api_client, user):
    response = api_client.patch(f"{USERS}{user.pk}/", {"bio": "b" * 501}, format="json", **bearer(user))
    assert response.status_code == 400
    assert "bio" in response.json()


@pytest.mark.parametrize("method", ["put", "delete"])
def test_put_and_delete_are_405(api_client, user, method):
    response = getattr(api_client, method)(f"{USERS}{user.pk}/", {}, format="json", **bearer(user))
    assert response.status_code == 405


# --- me ---------------------------------------------------------------------------------------


def test_me_returns_private_representation(api_client, user):
    response = api_client.get(f"{USERS}me/", **bearer(user))
    assert response.status_code == 200
    assert response.json()["email"] == user.email


def test_me_patch(api_client, user):
    response = api_client.patch(f"{USERS}me/", {"last_name": "Byron"}, format="json", **bearer(user))
    assert response.status_code == 200
    assert response.json()["last_name"] == "Byron"
    user.refresh_from_db()
    assert user.last_name == "Byron"


def test_me_without_token_is_401(api_client):
    assert api_client.get(f"{USERS}me/").status_code == 401


# --- tokens -----------------------------------------------------------------------------------


def test_token_obtain_refresh_and_blacklist(api_client, user):
    tokens = api_client.post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}).json()
    assert set(tokens) == {"access", "refresh"}

    me = api_client.get(f"{USERS}me/", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert me.json()["id"] == user.pk

    refreshed = api_client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert refreshed.status_code == 200
    assert {"access", "refresh"} <= set(refreshed.json())

    new_refresh = refreshed.json()["refresh"]
    assert api_client.post("/api/v1/auth/token/blacklist/", {"refresh": new_refresh}).status_code == 200
    assert api_client.post("/api/v1/auth/token/refresh/", {"refresh": new_refresh}).status_code == 401


def test_token_with_wrong_password_is_401(api_client, user):
    response = api_client.post("/api/v1/auth/token/", {"username": user.username, "password": "wrong"})
    assert response.status_code == 401


def test_inactive_and_deleted_users_get_no_token(api_client, make_user):
    from users.accounts import user_soft_delete

    inactive = make_user(is_active=False)
    deleted = user_soft_delete(user=make_user())
    for who in (inactive, deleted):
        response = api_client.post("/api/v1/auth/token/", {"username": who.username, "password": PASSWORD})
        assert response.status_code == 401


def test_token_of_soft_deleted_user_stops_working(api_client, user):
    from users.accounts import user_soft_delete

    headers = bearer(user)
    assert api_client.get(f"{USERS}me/", **headers).status_code == 200
    user_soft_delete(user=user)
    assert api_client.get(f"{USERS}me/", **headers).status_code == 401


# --- docs -------------------------------------------------------------------------------------


def test_openapi_schema_and_swagger_ui(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/users/{id}/" in paths and "/api/v1/users/me/" in paths
    docs = api_client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in asset for asset in assets)
    assert all(asset.startswith("/static/") for asset in assets), assets  # the sidecar, never a CDN


def test_unknown_url_is_a_json_404(api_client, settings):
    settings.DEBUG = False
    response = api_client.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_null_characters_and_wrong_types_are_field_errors(api_client):
    response = register(api_client, username="nul\x00l", bio=["not", "text"])
    assert response.status_code == 400
    assert {"username", "bio"} <= set(response.json())


def test_refresh_token_of_soft_deleted_user_is_refused(api_client, user):
    from users.accounts import user_soft_delete

    tokens = api_client.post("/api/v1/auth/token/", {"username": user.username, "password": PASSWORD}).json()
    user_soft_delete(user=user)
    assert api_client.post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]}).status_code == 401
