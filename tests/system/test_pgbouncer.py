"""Many workers, few connections: 16 uvicorn workers, each with Django's pool and the event loop's
pool at their shipped sizes (up to 224 connections in all), through a real PgBouncer in transaction
mode, to a PostgreSQL that lets their role open 50; under load, with no error."""
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from django.db import connection

from tests.servers import child_database_url, free_port, running_workers, wait_for_port
from tests.support import PASSWORD
from users.auth.tokens import token_pair
from users.models import User

PGBOUNCER = shutil.which("pgbouncer", path=f"{os.environ.get('PATH', '')}:/usr/sbin")  # root's PATH may lack sbin
pytestmark = [
    pytest.mark.skipif(PGBOUNCER is None, reason="needs Debian's pgbouncer (.ci/run installs it)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
]

ROLE = "sidus_budget"
LIMIT = 50
WORKERS = 16
REQUESTS = 1200  # of 24 clients at once over the workers: the load the connection budget must hold


def admin(statement: str) -> None:
    with psycopg.connect(child_database_url(), autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def limited_role():
    """A role PostgreSQL lets open LIMIT connections, with the rights the app needs on the test database."""
    admin(f"DROP ROLE IF EXISTS {ROLE}")
    admin(f"CREATE ROLE {ROLE} LOGIN CONNECTION LIMIT {LIMIT}")
    admin(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {ROLE}")
    admin(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
    yield ROLE
    admin(f"REASSIGN OWNED BY {ROLE} TO CURRENT_USER")
    admin(f"DROP OWNED BY {ROLE}")
    admin(f"DROP ROLE {ROLE}")


class PgBouncer:
    """PgBouncer in transaction mode on a port of its own, as the postgres user (it refuses root)."""

    def __init__(self, role: str, pool_size: int) -> None:
        db = connection.settings_dict
        self.dir = Path(tempfile.mkdtemp(prefix="sidus-pgbouncer-"))
        self.port = free_port()
        (self.dir / "pgbouncer.ini").write_text(f"""
[databases]
{db['NAME']} = host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} dbname={db['NAME']} user={role}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
server_reset_query =
logfile = {self.dir / 'pgbouncer.log'}
""")
        shutil.chown(self.dir, "postgres")
        self.process = subprocess.Popen([PGBOUNCER, "-u", "postgres", str(self.dir / "pgbouncer.ini")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for_port(self.port, process=self.process)
        self.url = f"postgres://{role}@127.0.0.1:{self.port}/{db['NAME']}"

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def peak_connections(role: str, stop: threading.Event, peaks: list[int]) -> None:
    with psycopg.connect(child_database_url(), autocommit=True) as conn:
        while not stop.is_set():
            peaks.append(conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,))
                         .fetchone()[0])
            time.sleep(0.05)


def test_sixteen_workers_share_fifty_connections_through_pgbouncer_with_no_error(limited_role):
    users = [User.objects.create_user(f"budget{i}", f"budget{i}@example.com", PASSWORD) for i in range(40)]
    tokens = {user.pk: token_pair(user)["access"] for user in users}
    bouncer = PgBouncer(limited_role, pool_size=LIMIT - 10)  # room for an operator's own session
    # DEBUG: the edge says when its event-loop pool failed and Django answered instead (without
    # DATABASE_PGBOUNCER it did, 143 times in 1,399 requests: "prepared statement ... does not exist").
    env = {"DJANGO_LOG_LEVEL": "DEBUG", "DATABASE_URL": bouncer.url, "DATABASE_PGBOUNCER": "true",
           "DATABASE_POOL_MAX_SIZE": "10", "LOOP_DB_POOL_SIZE": "4"}
    answers: list[int | str] = []
    peaks: list[int] = []
    try:
        with running_workers(WORKERS, **env) as workers:
            stop = threading.Event()

            def load(seed: int) -> None:
                rng = random.Random(seed)
                # Idle connections dropped before uvicorn's own 5 s: no request races a server's close.
                with httpx.Client(timeout=15, limits=httpx.Limits(keepalive_expiry=2)) as client:
                    n = 0
                    while not stop.is_set():
                        n += 1
                        base = rng.choice(workers).url
                        user = rng.choice(users)
                        try:
                            if n % 3 == 0:  # a lean PATCH: the event loop's pool
                                answer = client.patch(f"{base}/api/v1/users/me/", json={"bio": f"{seed} {n}"},
                                                      headers={"Authorization": f"Bearer {tokens[user.pk]}"})
                            elif n % 7 == 0:  # a registration: Django's pool, a transaction with its event
                                answer = client.post(f"{base}/api/v1/users/", json={
                                    "username": f"new{seed}x{n}", "email": f"new{seed}x{n}@example.com",
                                    "password": PASSWORD})
                            else:  # a read, a miss on many workers: the event loop's pool
                                answer = client.get(f"{base}/api/v1/users/{user.pk}/")
                            answers.append(answer.status_code)
                        except httpx.TransportError as exc:
                            answers.append(type(exc).__name__)

            watcher = threading.Thread(target=peak_connections, args=(limited_role, stop, peaks))
            clients = [threading.Thread(target=load, args=(seed,)) for seed in range(24)]
            for thread in (watcher, *clients):
                thread.start()
            # A number of requests, not a time: a slower machine (or a busier one) takes longer for them.
            deadline = time.monotonic() + 60
            while len(answers) < REQUESTS and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()
            for thread in (watcher, *clients):
                thread.join()
            outputs = "".join(worker.output() for worker in workers)
    finally:
        log = bouncer.log()
        bouncer.close()
    counts = {status: answers.count(status) for status in set(answers)}
    print(f"\nthrough PgBouncer: {len(answers)} requests {counts}, at most {max(peaks)} server connections")
    assert len(answers) >= REQUESTS and set(answers) <= {200, 201}, (counts, log[-3000:])
    assert max(peaks) <= LIMIT - 10 and "Traceback" not in outputs, outputs[-3000:]
    fallback = outputs.find("fell back to Django")
    assert fallback == -1, outputs[max(0, fallback - 2000):][:3000]
