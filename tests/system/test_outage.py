"""Redis stopped and restarted under the service: answers keep coming from PostgreSQL, nothing stale.

Each test starts a redis-server of its own so that it can stop it.
"""
import asyncio
import logging

import pytest
from asgiref.sync import sync_to_async

from tests.servers import needs_redis_server, running_workers, seen_everywhere, wait_until, warm
from tests.support import PASSWORD, bearer, wait_for
from users import accounts
from users.models import User
from users.runtime import current

pytestmark = [pytest.mark.django_db(transaction=True), needs_redis_server, pytest.mark.slow]


@pytest.fixture
def on_own_redis(own_redis, settings):
    """This process's cache and channel layer on the test's own Redis."""
    settings.REDIS_URL = own_redis.url
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": own_redis.url}}
    layers = {"default": {**settings.CHANNEL_LAYERS["default"]}}
    layers["default"]["CONFIG"] = {
        **layers["default"]["CONFIG"],
        "hosts": [{"address": own_redis.url.replace("/0", "/1"), "socket_timeout": 7, "socket_connect_timeout": 1}],
    }
    settings.CHANNEL_LAYERS = layers
    return own_redis


async def test_in_process_outage_serves_from_postgres_and_resumes(on_own_redis, listening, asgi_client, caplog):
    caplog.set_level(logging.WARNING, logger="users.cache")
    user = await sync_to_async(User.objects.create_user)("down", "down@example.com", PASSWORD, bio="before")
    url = f"/api/v1/users/{user.pk}/"
    await asgi_client.get(url)
    assert (await asgi_client.get(url)).headers["x-cache"] == "L1"

    on_own_redis.stop()
    await wait_for(lambda: not current().local_cache.enabled)  # the listener saw the break
    for _ in range(5):
        response = await asgi_client.get(url)
        assert response.status_code == 200 and response.headers["x-cache"] == "MISS"
    await sync_to_async(accounts.user_update)(user=user, data={"bio": "during"})  # its message is lost
    assert (await asgi_client.get(url)).json()["bio"] == "during"
    assert (await asgi_client.get("/health/")).status_code == 503
    assert [r.message for r in caplog.records].count(
        next(r.message for r in caplog.records if "Redis unavailable" in r.message)
    ) == 1

    on_own_redis.start()
    await wait_for(lambda: current().listener.joined.is_set(), timeout=5)
    assert not current().backlog  # the lost invalidation was sent again
    await asyncio.sleep(current().redis.health.RETRY_AFTER)
    first = await asgi_client.get(url)
    assert first.json()["bio"] == "during"
    assert (await asgi_client.get(url)).headers["x-cache"] == "L1"
    assert any("Redis is back" in r.message for r in caplog.records)


def test_workers_survive_a_redis_restart_without_serving_stale_profiles(own_redis):
    env = {"REDIS_URL": own_redis.url, "CHANNEL_LAYER_URL": own_redis.url.replace("/0", "/1")}
    with running_workers(3, **env) as workers:
        for worker in workers:
            wait_until(lambda: worker.client.get("/health/").status_code == 200)
        created = workers[0].client.post(
            "/api/v1/users/", json={"username": "outage", "email": "outage@example.com", "password": PASSWORD}
        )
        user = User.objects.get(pk=created.json()["id"])
        auth = {"Authorization": bearer(user)["HTTP_AUTHORIZATION"]}
        url = f"/api/v1/users/{user.pk}/"
        warm(workers, user.pk)

        own_redis.stop()
        patched = workers[1].client.patch(url, json={"bio": "while redis was down"}, headers=auth)
        assert patched.status_code == 200
        for worker in workers:
            for _ in range(3):
                response = worker.client.get(url)
                assert response.status_code == 200
                assert response.json()["bio"] == "while redis was down"
        assert workers[0].client.get("/health/").status_code == 503

        own_redis.start()
        for worker in workers:
            wait_until(lambda: worker.client.get("/health/").status_code == 200)
        for worker in workers:
            assert worker.client.get(url).json()["bio"] == "while redis was down"
        # Caching and invalidation are back on every worker.
        wait_until(lambda: all(w.client.get(url).headers["x-cache"] == "L1" for w in workers), timeout=5)
        assert workers[2].client.patch(url, json={"bio": "after"}, headers=auth).status_code == 200
        seen_everywhere(workers, user.pk, "after")
        for worker in workers:
            log = worker.output()
            assert "Traceback" not in log
            assert log.count("Redis unavailable") <= 1
