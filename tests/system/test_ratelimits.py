"""The rate limits of a real server: a locked username, and failing open when Redis stops."""
import pytest

from tests.servers import RedisServer, needs_redis_server, running_workers, wait_until
from tests.support import PASSWORD
from users.models import User

TOKEN = "/api/v1/auth/token/"
# Day-long windows, as `limits` gives: a fixed window that ended mid-test (a 1 m one every minute)
# would start the counts again, and the test would see a limit that was not reached.
SERVER_LIMITS = {"RATE_LIMITS_ENABLED": "true", "RATE_LIMIT_LOGIN_FAILED": "50/1d/ip,3/1d/key",
                 "RATE_LIMIT_LOGIN": "8/1d/ip"}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_server_locks_one_username_while_another_logs_in():
    User.objects.create_user("victim", "victim@example.com", PASSWORD)
    User.objects.create_user("bystander", "bystander@example.com", PASSWORD)
    with running_workers(1, **SERVER_LIMITS) as (worker,):
        post = worker.client.post
        for _ in range(3):
            assert post(TOKEN, json={"username": "victim", "password": "guess"}).status_code == 401
        locked = post(TOKEN, json={"username": "victim", "password": PASSWORD})
        assert locked.status_code == 429, worker.output()[-2000:]  # a Redis error would have opened the limits
        assert 1 <= int(locked.headers["retry-after"]) <= 86400
        assert locked.headers["content-type"] == "application/json"
        assert "detail" in locked.json()
        assert post(TOKEN, json={"username": "bystander", "password": PASSWORD}).status_code == 200
        # Forged X-Forwarded-For headers do not make one client many (uvicorn runs --no-proxy-headers).
        statuses = [post(TOKEN, json={"username": "bystander", "password": PASSWORD},
                         headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(5)]
        assert statuses == [200, 200, 200, 429, 429]


@needs_redis_server
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_server_fails_open_when_redis_stops():
    User.objects.create_user("open", "open@example.com", PASSWORD)
    redis_server = RedisServer()
    redis_server.start()
    env = {**SERVER_LIMITS, "REDIS_URL": redis_server.url, "CHANNEL_LAYER_URL": redis_server.url.replace("/0", "/1"),
           "RATE_LIMIT_LOGIN_FAILED": "50/m/ip,1/5m/key"}
    try:
        with running_workers(1, **env) as (worker,):
            wait_until(lambda: worker.client.get("/health/").status_code == 200)
            post = worker.client.post
            redis_server.stop()
            # Without counters, nobody is locked out: the limit is off, the answers are not 5xx.
            for _ in range(3):
                assert post(TOKEN, json={"username": "open", "password": "guess"}).status_code == 401
            response = post(TOKEN, json={"username": "open", "password": PASSWORD})
            assert response.status_code == 200
            access = response.json()["access"]
            me = worker.client.get("/api/v1/users/me/", headers={"Authorization": f"Bearer {access}"})
            assert me.status_code == 200
            assert worker.output().count("Redis unavailable") == 1
    finally:
        redis_server.close()
