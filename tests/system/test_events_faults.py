"""User events under faults, with real processes: two relays (`manage.py relay_events`) publish
through a TCP proxy to the real RabbitMQ while users register and change; the proxy cuts the
broker off for 20 s, and the relays are killed with SIGKILL in the middle of draining the backlog
(two new ones take over). The consumer's queue must then hold every committed event, none of a
rolled-back change, each user's in order; what was published and not yet marked comes twice."""
import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import connection, transaction

from tests.proxy import FaultyProxy
from tests.servers import ROOT, wait_until, worker_env
from users import accounts
from users.models import User, UserEvent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

USERS, UPDATES, ROLLED_BACK = 500, 500, 50
CUT_SECONDS = 20.0


def relay(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", "relay_events"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write(names: list[str], done: threading.Event) -> None:
    """USERS registrations, UPDATES profile changes and ROLLED_BACK changes undone, over ~40 s."""
    try:
        users = []
        for n in range(USERS + UPDATES + ROLLED_BACK):
            if n % 2 == 0 and len(users) < USERS or not users:
                name = names[len(users)]
                users.append(accounts.user_create(username=name, email=f"{name}@example.com",
                                                  password="fault-test-password"))
            elif n % 11 == 0:
                try:
                    with transaction.atomic():
                        accounts.user_update(user=users[n % len(users)], data={"bio": f"rolled back {n}"})
                        raise RuntimeError("undone")
                except RuntimeError:
                    pass
            else:
                user = User.objects.get(pk=users[n % len(users)].pk)
                accounts.user_update(user=user, data={"bio": f"change {n}"})
            time.sleep(0.03)
    finally:
        connection.close()
        done.set()


def test_every_celery_worker_runs_a_relay(exchange, settings):
    queue = exchange.queue
    env = worker_env(EVENTS_RELAY="true", EVENTS_EXCHANGE=settings.EVENTS_EXCHANGE)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "sidus", "worker", "--pool", "solo",
                               "--loglevel", "WARNING"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        user = accounts.user_create(username="celeryrelayed", email="celeryrelayed@example.com",
                                    password="fault-test-password")
        wait_until(lambda: queue.queue_declare(passive=True).message_count == 1, timeout=60)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    [event] = exchange.events()
    assert (event["type"], event["subject"]) == ("user.registered", str(user.pk))
    assert UserEvent.objects.get(user_id=user.pk).published_at is not None


def test_a_cut_broker_and_a_killed_relay_lose_nothing_and_reorder_nothing(exchange, settings, capsys):
    queue = exchange.queue
    with FaultyProxy(5672) as proxy:
        env = worker_env(EVENTS_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{proxy.port}//",
                         EVENTS_EXCHANGE=settings.EVENTS_EXCHANGE, EVENTS_BROKER_TIMEOUT="2",
                         EVENTS_RELAY_POLL_INTERVAL="0.2")
        relays = [relay(env), relay(env)]
        names = [f"fault{n}" for n in range(USERS)]
        done = threading.Event()
        writer = threading.Thread(target=write, args=(names, done))
        writer.start()
        try:
            time.sleep(8)
            proxy.cut()  # the broker is gone for the relays, with writes going on
            time.sleep(CUT_SECONDS)
            backlog = UserEvent.objects.filter(published_at__isnull=True).count()
            queued = queue.queue_declare(passive=True).message_count
            proxy.resume()
            # Kill the relays as soon as the backlog reaches the broker: in the middle of a batch,
            # published and not yet marked so (the backlog is one batch of either relay).
            wait_until(lambda: queue.queue_declare(passive=True).message_count > queued, timeout=30)
            for process in relays:
                process.send_signal(signal.SIGKILL)
            unmarked = UserEvent.objects.filter(published_at__isnull=True).count()
            relays += [relay(env), relay(env)]
            done.wait(120)
            writer.join(10)
            wait_until(lambda: not UserEvent.objects.filter(published_at__isnull=True).exists(), timeout=60)
        finally:
            for process in relays:
                process.send_signal(signal.SIGTERM)
            for process in relays:
                process.wait(15)
    received = exchange.events()

    committed = {str(event.id): event for event in UserEvent.objects.filter(user__username__in=names)}
    ids = [event["id"] for event in received]
    assert backlog > 0, "the cut came before any event: nothing was held up"
    assert unmarked > 0, "the relays were killed after their batch was done, not in the middle of it"
    assert set(committed) <= set(ids), f"{len(set(committed) - set(ids))} committed events lost"
    assert set(ids) <= set(committed), "an event of no committed change was published"
    assert not [e for e in received if e["data"]["user"]["bio"].startswith("rolled back")]
    first_seen: dict[str, list[int]] = {}
    seen = set()
    for event in received:
        if event["id"] not in seen:
            seen.add(event["id"])
            first_seen.setdefault(event["subject"], []).append(event["subjectsequence"])
    for subject, sequences in first_seen.items():
        assert sequences == list(range(1, len(sequences) + 1)), f"user {subject}: {sequences}"
    duplicates = len(ids) - len(set(ids))
    with capsys.disabled():
        print(f"\nevents under faults: {len(committed)} committed, {len(ids)} received, {duplicates} duplicates, "
              f"{backlog} held up by the {CUT_SECONDS:.0f} s cut, {unmarked} unmarked when the relays were killed, "
              f"0 lost, 0 out of order")
