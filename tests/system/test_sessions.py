"""Sessions ended through one worker, as every other worker and a Redis outage see them."""
import time

import pytest

from tests.servers import RedisServer, needs_redis_server, running_workers, wait_until
from tests.support import PASSWORD
from users.models import User

SESSIONS = "/api/v1/auth/sessions/"


@pytest.mark.slow
@needs_redis_server
@pytest.mark.django_db(transaction=True)
def test_a_session_ended_through_one_worker_is_401_on_the_others_even_without_redis():
    redis = RedisServer()
    redis.start()
    try:
        env = {"REDIS_URL": redis.url, "CHANNEL_LAYER_URL": redis.url.replace("/0", "/1")}
        with running_workers(3, **env) as workers:
            for worker in workers:
                wait_until(lambda: worker.client.get("/health/").status_code == 200)
            User.objects.create_user("dee", "dee@example.com", PASSWORD)
            pairs = [workers[0].client.post("/api/v1/auth/token/", json={"username": "dee", "password": PASSWORD})
                     .json() for _ in range(3)]
            heads = [{"Authorization": f"Bearer {pair['access']}"} for pair in pairs]
            for worker in workers:
                assert worker.client.patch("/api/v1/users/me/", json={"bio": "on"}, headers=heads[0]).is_success

            ended = workers[0].client.get(SESSIONS, headers=heads[1]).json()["results"]
            victim = next(row["id"] for row in ended if not row["current"])
            victim_head = next(h for h, p in zip(heads, pairs) if victim.replace("-", "") in _sid(p))
            assert workers[0].client.delete(f"{SESSIONS}{victim}/", headers=heads[1]).status_code == 204
            started = time.monotonic()
            for worker in workers:  # the one it was ended through too: each learns it from PostgreSQL
                me = "/api/v1/users/me/"
                while worker.client.patch(me, json={"bio": "x"}, headers=victim_head).status_code != 401:
                    assert time.monotonic() - started < 1.0
            assert workers[2].client.get("/api/v1/users/me/", headers=heads[1]).status_code == 200

            redis.stop()
            for worker in workers:
                patched = worker.client.patch("/api/v1/users/me/", json={"bio": "y"}, headers=victim_head)
                assert patched.status_code == 401
                assert worker.client.get("/api/v1/users/me/", headers=victim_head).status_code == 401
                assert worker.client.get("/api/v1/users/me/", headers=heads[1]).status_code == 200
    finally:
        redis.close()


def _sid(pair: dict[str, str]) -> str:
    import jwt

    return jwt.decode(pair["access"], options={"verify_signature": False})["sid"]
