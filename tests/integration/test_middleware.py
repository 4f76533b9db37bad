"""The middleware stack: Django's headers on every answer, the admin's middleware for the admin
only, and the thread hops a request costs (each is ~0.3 ms of futex wake-ups here)."""
import pytest
from asgiref.sync import sync_to_async

from tests.support import PASSWORD
from users.models import User

SECURITY_HEADERS = {"x-frame-options": "DENY", "x-content-type-options": "nosniff",
                    "referrer-policy": "same-origin", "cross-origin-opener-policy": "same-origin"}


@pytest.mark.django_db(transaction=True)
async def test_api_answers_carry_djangos_security_headers_and_no_session(asgi_client, close_db_connections):
    user = await sync_to_async(User.objects.create_user)("headers", "headers@example.com", PASSWORD)
    for response in (await asgi_client.get(f"/api/v1/users/{user.pk}/"), await asgi_client.get("/api/v1/users/0/"),
                     await asgi_client.post("/api/v1/auth/token/", json={"username": "x", "password": "y"})):
        assert {k: response.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS
        assert "set-cookie" not in response.headers and "cookie" not in response.headers.get("vary", "").lower()


@pytest.mark.django_db(transaction=True)
async def test_a_miss_costs_few_thread_hops(asgi_client, close_db_connections, hops):
    user = await sync_to_async(User.objects.create_user)("hops", "hops@example.com", PASSWORD)
    hops.clear()
    response = await asgi_client.get(f"/api/v1/users/{user.pk}/")
    assert response.headers["x-cache"] == "MISS"
    print("hops per miss:", len(hops))
    assert len(hops) <= 6


@pytest.mark.django_db(transaction=True)
async def test_the_admin_still_has_its_session_and_csrf(asgi_client, close_db_connections):
    page = await asgi_client.get("/admin/login/")
    assert page.status_code == 200 and "csrftoken" in page.headers.get("set-cookie", "")
    refused = await asgi_client.post("/admin/login/", data={"username": "a", "password": "b"})
    assert refused.status_code == 403  # no CSRF token: the admin is still protected


@pytest.mark.django_db(transaction=True)
async def test_static_files_are_served_under_static_url_only(asgi_client, close_db_connections):
    css = await asgi_client.get("/static/admin/css/base.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await asgi_client.get("/static/no-such-file.css")).status_code == 404
