"""Input that used to reach a 500, and headers that must never leak: every answer is a 4xx."""
import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from tests.support import PASSWORD, bearer
from users.models import User

pytestmark = pytest.mark.django_db

USERS = "/api/v1/users/"
TOKEN = "/api/v1/auth/token/"
DEEP = b"[" * 5000 + b"]" * 5000  # ~10 KB: json raises RecursionError near 1000 levels


@pytest.mark.parametrize("url", [USERS, TOKEN, "/api/v1/auth/token/refresh/", "/api/v1/auth/token/blacklist/"])
def test_deeply_nested_json_is_400(api_client, url):
    response = api_client.post(url, DEEP, content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize(
    "body, content_type",
    [
        (b'{"username": "\\ud800"}', "application/json"),  # a lone surrogate escape is valid JSON
        (b"\xff\xfe{}", "application/json"),
        (b'{"a": 1}', "application/json; charset=no-such-charset"),
        (b'{"bio": NaN}', "application/json"),
        (b'{"id": ' + b"9" * 5000 + b"}", "application/json"),  # over int()'s 4300 digits
    ],
)
def test_undecodable_or_odd_json_is_a_4xx(api_client, body, content_type):
    response = api_client.post(USERS, body, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert not User.objects.exists()


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_body_above_the_limit_is_413_with_a_json_detail(api_client):
    response = api_client.post(USERS, {"username": "big", "bio": "x" * 2000}, format="json")
    assert response.status_code == 413
    assert "limit is 1000 bytes" in response.json()["detail"]


@pytest.mark.parametrize("pk", ["9" * 4301, "05", "+5", "5.0", "٥", "0x5", "1" * 20])
def test_only_the_canonical_id_names_a_user(api_client, user, pk):
    assert api_client.get(f"{USERS}{user.pk}/").status_code == 200
    response = api_client.get(f"{USERS}{pk}/")
    assert response.status_code == 404
    response = api_client.patch(f"{USERS}{pk}/", {"bio": "x"}, format="json", **bearer(user))
    assert response.status_code == 404


def test_non_canonical_form_of_an_existing_id_is_404(api_client, user):
    assert api_client.get(f"{USERS}0{user.pk}/").status_code == 404


def test_anonymous_list_is_405_not_401(api_client):
    response = api_client.get(USERS)
    assert response.status_code == 405
    assert response["Allow"] == "POST, OPTIONS"


def test_token_answers_are_never_stored(api_client, user):
    response = api_client.post(TOKEN, {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    refreshed = api_client.post("/api/v1/auth/token/refresh/", {"refresh": response.json()["refresh"]})
    assert "no-store" in refreshed["Cache-Control"]
    failed = api_client.post(TOKEN, {"username": user.username, "password": "wrong"}, format="json")
    assert "no-store" in failed["Cache-Control"]


def test_private_answers_are_never_stored_and_the_public_one_may_be(api_client, user):
    headers = bearer(user)
    for response in (
        api_client.get(f"{USERS}me/", **headers),
        api_client.patch(f"{USERS}me/", {"bio": "a"}, format="json", **headers),
        api_client.patch(f"{USERS}{user.pk}/", {"bio": "b"}, format="json", **headers),
        api_client.post(USERS, {"username": "new", "email": "new@example.com", "password": PASSWORD}),
    ):
        assert response.status_code in (200, 201), response.content
        assert "no-store" in response["Cache-Control"]
    assert "Cache-Control" not in api_client.get(f"{USERS}{user.pk}/")


# --- through the ASGI application, as uvicorn would call it --------------------------------------


@pytest.mark.django_db(transaction=True)
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
async def test_asgi_refuses_a_large_declared_body_before_django_reads_it(asgi_client, close_db_connections):
    response = await asgi_client.post(USERS, content=b"{" + b" " * 5000 + b"}",
                                      headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large: the limit is 1000 bytes."}


@pytest.mark.django_db(transaction=True)
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
async def test_asgi_stops_a_large_chunked_body(asgi_client, close_db_connections):
    async def chunks():
        for _ in range(10):
            yield b" " * 500

    response = await asgi_client.post(USERS, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert await sync_to_async(User.objects.count)() == 0


# --- The edge's two reproductions (issue 17): every path answers a body as Django does -----------


async def chunks(body: bytes, size: int = 5):
    for start in range(0, len(body), size):
        yield body[start:start + size]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("if_match", [None, "*"])
async def test_a_deep_body_with_a_bad_token_is_a_json_401_on_every_path(asgi_client, loading, if_match):
    deep = b'{"bio": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}
    if if_match:
        headers["If-Match"] = if_match
    response = await asgi_client.patch(f"{USERS}me/", content=deep, headers=headers)
    assert response.status_code == 401 and response.headers["content-type"] == "application/json"
    assert "detail" in response.json()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("if_match", [None, "*"])
async def test_a_chunked_patch_is_applied_as_the_same_body_with_a_length(asgi_client, loading, listening, if_match):
    user = await sync_to_async(User.objects.create_user)("chunky", "chunky@example.com", PASSWORD, bio="old")
    headers = {**{"Authorization": (await sync_to_async(bearer)(user))["HTTP_AUTHORIZATION"]},
               "Content-Type": "application/json", **({"If-Match": if_match} if if_match else {})}
    for _ in range(2):  # Django's answer, then the edge's once it learnt the headers
        written = await asgi_client.patch(f"{USERS}me/", content=chunks(b'{"bio": "new"}'), headers=headers)
        assert written.status_code == 200 and written.json()["bio"] == "new"
        assert written.request.headers["transfer-encoding"] == "chunked"
    await user.arefresh_from_db()
    assert user.bio == "new"
    refused = await asgi_client.patch(f"{USERS}me/", content=chunks(b'{"is_staff": true, "bio": 12}'),
                                      headers=headers)
    assert refused.status_code == 400 and set(refused.json()) == {"is_staff", "bio"}


@pytest.mark.django_db(transaction=True)
async def test_chunked_posts_are_read_whole(asgi_client, close_db_connections):
    body = b'{"username": "chunked", "email": "chunked@example.com", "password": "' + PASSWORD.encode() + b'"}'
    created = await asgi_client.post(USERS, content=chunks(body), headers={"Content-Type": "application/json"})
    assert created.status_code == 201, created.text
    login = b'{"username": "chunked", "password": "' + PASSWORD.encode() + b'"}'
    token = await asgi_client.post(TOKEN, content=chunks(login), headers={"Content-Type": "application/json"})
    assert token.status_code == 200 and "access" in token.json()


@pytest.mark.parametrize("charset", ["bogus", "utf-9"])
def test_an_unknown_charset_is_a_400_naming_no_input_and_creates_nothing(api_client, charset):
    """Django drops a charset it does not know and reads the body as UTF-8, a guess: the docs say 400."""
    body = b'{"username": "guessed", "email": "guessed@example.com", "password": "pw-long-enough-1"}'
    response = api_client.post(USERS, body, content_type=f"application/json; charset={charset}")
    assert response.status_code == 400
    assert "charset" in response.json()["detail"] and charset not in response.json()["detail"]
    assert not User.objects.exists()
