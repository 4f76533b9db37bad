"""/health/ through the real ASGI application, against real PostgreSQL and Redis."""
import httpx
import pytest

from sidus.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


async def get_health() -> httpx.Response:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        return await client.get("/health/")


async def test_health_ok_names_every_dependency():
    response = await get_health()
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "channel_layer": "ok"},
        "events": {"backlog": 0},
    }


async def test_health_counts_the_events_not_yet_published_without_failing(close_db_connections):
    from asgiref.sync import sync_to_async

    from users import accounts

    await sync_to_async(accounts.user_create)(username="backlogged", email="backlogged@example.com",
                                              password="Str0ng-pass-phrase!")
    response = await get_health()
    assert response.status_code == 200  # no relay runs here: the event waits, and that is no failure
    assert response.json()["events"] == {"backlog": 1}


async def test_health_is_503_naming_the_failing_cache(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = await get_health()
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok" and checks["channel_layer"] == "ok"
    assert checks["cache"].startswith("error")


async def test_health_is_503_naming_the_failing_channel_layer(settings):
    layers = {"default": {**settings.CHANNEL_LAYERS["default"]}}
    layers["default"]["CONFIG"] = {"hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 0.2}]}
    settings.CHANNEL_LAYERS = layers
    response = await get_health()
    assert response.status_code == 503
    assert response.json()["checks"]["channel_layer"].startswith("error")
