"""The webhooks' benchmark, not part of the test suite:

    python -m tests.benchmark_webhooks    # PostgreSQL (the `sidus` database, as tests.benchmark)

1. From commit to a receiver's answer: BENCH_WEBHOOK_EVENTS `user.updated` events (200 users,
   committed one after another by this process) to three endpoints, two answering at once and one
   after 5 s (real HTTP servers in this process); one sender (`manage.py relay_webhooks`, a
   process of its own, as a Celery worker's). p50 and p99 per endpoint, the slow one's by the time
   the fast ones had everything.
2. One sender draining a backlog of BENCH_WEBHOOK_BACKLOG deliveries to one fast endpoint (a
   uvicorn process answering 200), first one event each for as many users, then 100 events each
   for a hundredth as many users (each user's in order: one in flight per user).
"""
import os
import subprocess
import sys
import time

from django.core.management import call_command
from django.db import connection
from django.db.models import Max, Min
from django.test.utils import override_settings

from tests.benchmark import percentiles, stop  # first: it sets Django up, on the benchmark's database
from tests.receivers import Answer, Receiver
from tests.servers import ROOT, free_port, wait_for_port
from users import accounts, webhooks
from users.models import User, UserEvent, WebhookEndpoint

EVENTS = int(os.environ.get("BENCH_WEBHOOK_EVENTS", "1000"))
BACKLOG = int(os.environ.get("BENCH_WEBHOOK_BACKLOG", "10000"))
USERS = 200
SLOW = 5.0
LOCAL = {"WEBHOOKS_ALLOW_HOSTS": "127.0.0.1", "WEBHOOKS_ALLOW_PRIVATE": "true"}
FIRST = 9_100_000_000  # the backlog's users: no one has them
PREFIX = "bench-wh-"


def sender() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "relay_webhooks"], cwd=ROOT, env={**os.environ, **LOCAL})


def latency(*, slow_endpoint: bool = True) -> list[str]:
    """Commit to answer for EVENTS events to two fast endpoints and (or not) one answering after SLOW s."""
    stamp = int(time.time())
    users = [accounts.user_create(username=f"{PREFIX}{stamp}x{n}", email=f"wh{stamp}x{n}@example.com",
                                  password="bench-password-long-enough") for n in range(USERS)]
    sequences = {user.pk: 1 for user in users}  # their registration: the endpoints come after it
    committed: dict[tuple[str, int], float] = {}
    with Receiver() as one, Receiver() as two, Receiver(lambda r, n: Answer(delay=SLOW)) as slow:
        with override_settings(WEBHOOKS_ALLOW_HOSTS=["127.0.0.1"], WEBHOOKS_ALLOW_PRIVATE=True):
            for receiver in (one, two, slow) if slow_endpoint else (one, two):
                webhooks.endpoint_add(url=receiver.url, event_types=["user.updated"])
        process = sender()
        try:
            time.sleep(2)  # it listens
            for n in range(EVENTS):
                user = users[n % USERS]
                accounts.user_update(user=user, data={"bio": f"bio {n}"})
                sequences[user.pk] += 1
                committed[(str(user.pk), sequences[user.pk])] = time.monotonic()
            produced = time.monotonic()
            for receiver in (one, two):
                receiver.wait_for(EVENTS, timeout=120)
            done = time.monotonic()
        finally:
            stop(process)
        lines = [f"webhooks: {EVENTS} user.updated events of {USERS} users committed in "
                 f"{produced - min(committed.values()):.1f} s, one sender (manage.py relay_webhooks), "
                 f"WEBHOOKS_CONCURRENCY 32, {'with' if slow_endpoint else 'without'} an endpoint answering after "
                 f"{SLOW:g} s; from commit to the receiver:"]
        for name, receiver in (("fast endpoint 1", one), ("fast endpoint 2", two)):
            delays = [r.at - committed[(r.json["subject"], r.json["subjectsequence"])] for r in receiver.requests]
            lines.append(f"  {name}: {len(delays)} events, {percentiles(delays)}")
        answered = [r.at + SLOW - committed[(r.json["subject"], r.json["subjectsequence"])] for r in slow.requests
                    if r.at + SLOW <= done]
        if slow_endpoint:
            lines.append(f"  the endpoint answering after {SLOW:g} s: {len(answered)} answered by the time the fast "
                         f"ones had all {EVENTS} ({done - produced:.1f} s after the last commit)"
                         + (f", {percentiles(answered)} from commit to its answer" if answered else ""))
    return lines


def drain(users: int, per_user: int) -> str:
    """One sender posting a backlog of users x per_user deliveries to one fast endpoint."""
    count = users * per_user
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.bare_asgi:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"], cwd=ROOT, env=os.environ.copy())
    wait_for_port(port, process=receiver)
    with override_settings(WEBHOOKS_ALLOW_HOSTS=["127.0.0.1"], WEBHOOKS_ALLOW_PRIVATE=True):
        endpoint, _ = webhooks.endpoint_add(url=f"http://127.0.0.1:{port}/hook", event_types=["user.*"])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO user_event (id, user_id, sequence, type, time, data, context, attempts, last_error) "
            "SELECT gen_random_uuid(), %s + u, s, 'user.updated', now(), jsonb_build_object('user', "
            "jsonb_build_object('id', %s + u, 'username', 'bench-' || u, 'first_name', 'Bench', 'last_name', "
            "'User ' || u, 'bio', 'Profile number ' || u, 'date_joined', '2026-01-01T00:00:00Z'), 'changed', "
            "jsonb_build_array('bio')), '{}', 0, '' FROM generate_series(1, %s) u, generate_series(1, %s) s",
            [FIRST, FIRST, users, per_user])
        cursor.execute("INSERT INTO webhook_delivery (endpoint_id, event_id, user_id, sequence) "
                       "SELECT %s, id, user_id, sequence FROM user_event WHERE user_id >= %s", [endpoint.pk, FIRST])
    process = sender()
    started = time.monotonic()
    try:
        while (delivered := endpoint.deliveries.filter(status="delivered").count()) < count:
            assert process.poll() is None, "the sender stopped"
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        stop(process)
        receiver.terminate()
        receiver.wait(timeout=10)
    first, last = endpoint.deliveries.aggregate(first=Min("delivered_at"), last=Max("delivered_at")).values()
    steady = (last - first).total_seconds()
    return (f"webhooks: one sender drained a backlog of {delivered} deliveries ({users} users x {per_user} events) "
            f"to one fast endpoint: {delivered / steady:.0f} deliveries/s from the first to the last "
            f"({elapsed:.1f} s with the process's start)")


def clean() -> None:
    WebhookEndpoint.objects.all().delete()  # their deliveries too
    UserEvent.objects.filter(user_id__gte=FIRST).delete()


def main() -> None:
    call_command("migrate", verbosity=0)
    clean()
    try:
        for slow_endpoint in (False, True):
            for line in latency(slow_endpoint=slow_endpoint):
                print(line, flush=True)
            clean()
        print(drain(BACKLOG, 1), flush=True)
        clean()
        print(drain(BACKLOG // 100, 100), flush=True)
    finally:
        clean()
        User.objects.filter(username__startswith=PREFIX).delete()


if __name__ == "__main__":
    main()
