"""Several real uvicorn workers: a change made through one is seen by all of them."""
import random
import statistics
import threading
import time

import pytest

from tests.servers import running_workers, seen_everywhere, wait_until, warm
from tests.support import PASSWORD, bearer
from users.models import User

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WORKERS = 3


@pytest.fixture(scope="module")
def workers(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), running_workers(WORKERS) as started:
        for worker in started:
            deadline = time.monotonic() + 20
            while worker.client.get("/health/").status_code != 200:
                assert time.monotonic() < deadline, worker.output()
                time.sleep(0.1)
        yield started


def test_update_through_one_worker_reaches_every_worker_within_a_second(workers):
    created = workers[0].client.post(
        "/api/v1/users/", json={"username": "multi", "email": "multi@example.com", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    user = User.objects.get(pk=created.json()["id"])
    warm(workers, user.pk)

    delays = []
    for round_ in range(5):
        bio = f"round {round_}"
        patched = workers[round_ % WORKERS].client.patch(
            f"/api/v1/users/{user.pk}/", json={"bio": bio},
            headers={"Authorization": bearer(user)["HTTP_AUTHORIZATION"]},
        )
        assert patched.status_code == 200
        delays.extend(seen_everywhere(workers, user.pk, bio))
        warm(workers, user.pk)
    print(f"\ninvalidation seen by {WORKERS} workers: max {max(delays) * 1000:.1f} ms, "
          f"median {statistics.median(delays) * 1000:.1f} ms over {len(delays)} reads")


def test_concurrent_writers_and_readers_converge_on_the_last_committed_value(workers):
    user = User.objects.create_user("stress", "stress@example.com", PASSWORD, bio="start")
    auth = {"Authorization": bearer(user)["HTTP_AUTHORIZATION"]}
    url = f"/api/v1/users/{user.pk}/"
    stop = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        import httpx

        clients = [httpx.Client(base_url=w.url, timeout=10) for w in workers]
        while not stop.is_set():
            response = random.choice(clients).get(url)
            if response.status_code != 200:
                errors.append(f"GET {response.status_code}")
        for client in clients:
            client.close()

    def writer(n: int) -> None:
        import httpx

        clients = [httpx.Client(base_url=w.url, timeout=10) for w in workers]
        for i in range(15):
            response = random.choice(clients).patch(url, json={"bio": f"w{n}-{i}"}, headers=auth)
            if response.status_code != 200:
                errors.append(f"PATCH {response.status_code}")
        for client in clients:
            client.close()

    readers = [threading.Thread(target=reader) for _ in range(3)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()

    assert errors == []
    user.refresh_from_db()
    seen_everywhere(workers, user.pk, user.bio)
    time.sleep(0.2)  # and it stays: no late store of an older value
    for worker in workers:
        for _ in range(2):
            assert worker.client.get(url).json()["bio"] == user.bio


def test_concurrent_registrations_of_one_username_give_one_201_and_409s(workers):
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def attempt(n: int) -> httpx.Response:
        with httpx.Client(base_url=workers[n % WORKERS].url, timeout=10) as client:
            return client.post("/api/v1/users/", json={
                "username": "Contested" if n % 2 else "contested", "email": f"c{n}@example.com",
                "password": PASSWORD,
            })

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(attempt, range(12)))

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * 11, [r.text for r in responses]
    assert all(r.json() == {"username": ["A user with that username already exists."]}
               for r in responses if r.status_code == 409)
    assert User.objects.filter(username__iexact="contested").count() == 1


def test_shell_and_admin_bulk_changes_reach_every_worker(workers):
    from users import accounts

    users = [User.objects.create_user(f"bulk{i}", f"bulk{i}@example.com", PASSWORD) for i in range(3)]
    for user in users:
        warm(workers, user.pk)

    # What the shell or the admin change view does: a save, then the signal's on_commit.
    users[0].bio = "edited in the shell"
    users[0].save()
    seen_everywhere(workers, users[0].pk, "edited in the shell")

    # What the admin bulk action does: QuerySet.update() plus one explicit invalidation.
    accounts.users_soft_delete(user_ids=[u.pk for u in users])
    deadline = time.monotonic() + 1.0
    while any(w.client.get(f"/api/v1/users/{u.pk}/").status_code != 404 for w in workers for u in users):
        assert time.monotonic() < deadline, "a worker still serves a deleted user"


def test_etags_agree_across_workers_304_everywhere_and_412_after_a_write(workers):
    created = workers[0].client.post(
        "/api/v1/users/", json={"username": "tagged", "email": "tagged@example.com", "password": PASSWORD}
    )
    user = User.objects.get(pk=created.json()["id"])
    url, auth = f"/api/v1/users/{user.pk}/", {"Authorization": bearer(user)["HTTP_AUTHORIZATION"]}
    etag = workers[0].client.get(url).headers["etag"]
    for worker in workers:  # a MISS or an L2 answer first, then L1: the same tag and a 304 on each
        for _ in range(2):
            response = worker.client.get(url, headers={"If-None-Match": etag})
            assert response.status_code == 304 and response.headers["etag"] == etag
    assert workers[1].client.patch(url, json={"bio": "tab one"}, headers={**auth, "If-Match": etag}).status_code == 200
    stale = workers[2].client.patch(url, json={"bio": "tab two"}, headers={**auth, "If-Match": etag})
    assert stale.status_code == 412
    for worker in workers:  # within the invalidation delay, every worker has the new version
        wait_until(lambda: worker.client.get(url, headers={"If-None-Match": etag}).status_code == 200, timeout=1)
        fresh = worker.client.get(url, headers={"If-None-Match": etag})
        assert fresh.json()["bio"] == "tab one" and fresh.headers["etag"] != etag


def test_leaving_through_one_worker_is_a_404_on_every_worker_and_every_token_401(workers):
    user = User.objects.create_user("leaver", "leaver@example.com", PASSWORD)
    warm(workers, user.pk)
    auth = {"Authorization": bearer(user)["HTTP_AUTHORIZATION"]}

    wrong = workers[1].client.request("DELETE", "/api/v1/users/me/", json={"current_password": "nope"}, headers=auth)
    assert wrong.status_code == 400 and "current_password" in wrong.json()
    left = workers[1].client.request("DELETE", "/api/v1/users/me/", json={"current_password": PASSWORD}, headers=auth)
    assert left.status_code == 204, left.text
    deadline = time.monotonic() + 1.0
    while any(w.client.get(f"/api/v1/users/{user.pk}/").status_code != 404 for w in workers):
        assert time.monotonic() < deadline, "a worker still serves a user who left"
    assert all(w.client.get("/api/v1/users/me/", headers=auth).status_code == 401 for w in workers)
