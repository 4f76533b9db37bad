"""Refresh tokens raced across real workers."""
import pytest

from tests.support import PASSWORD


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("concurrent", [8, 32])
def test_concurrent_refreshes_of_one_token_across_two_workers_answer_one_200(make_user, concurrent):
    import threading

    import httpx

    from tests.servers import running_workers

    user = make_user()
    with running_workers(2) as workers:
        credentials = {"username": user.username, "password": PASSWORD}
        pair = workers[0].client.post("/api/v1/auth/token/", json=credentials).json()
        clients = [httpx.Client(base_url=workers[i % 2].url, timeout=30) for i in range(concurrent)]
        for client in clients:  # connected before the race, so that the requests start together
            client.get("/health/")
        start, answers = threading.Barrier(concurrent), [None] * concurrent

        def send(i: int) -> None:
            start.wait()
            answers[i] = clients[i].post("/api/v1/auth/token/refresh/", json={"refresh": pair["refresh"]})

        threads = [threading.Thread(target=send, args=(i,)) for i in range(concurrent)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for client in clients:
            client.close()
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] + [401] * (concurrent - 1), statuses
        codes = {answer.json()["code"] for answer in answers if answer.status_code == 401}
        assert "refresh_token_reused" in codes and codes <= {"refresh_token_reused", "session_ended"}
        # The race was the theft signal: the one new pair is dead too, on both workers.
        winner = next(answer.json() for answer in answers if answer.status_code == 200)
        assert workers[1].client.post("/api/v1/auth/token/refresh/",
                                      json={"refresh": winner["refresh"]}).status_code == 401
    reasons = list(user.sessions.values_list("end_reason", flat=True))
    assert reasons == ["refresh_reused"]
