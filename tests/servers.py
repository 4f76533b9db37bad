"""Real processes for the tests: uvicorn workers and a private Redis server."""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The marks of a test module that drives Debian's Chromium against real workers.
BROWSER_TESTS = [
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
]


def free_port() -> int:
    """A port free now, for servers that cannot be handed a bound socket (redis-server, aiosmtpd)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float = 10.0) -> None:
    """Poll `condition` until true; connection errors count as not yet (a server still starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def wait_for_port(port: int, timeout: float = 20.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


# Tests that stop a Redis server need one of their own (not in the app's Docker image).
needs_redis_server = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


class RedisServer:
    """A redis-server of the test's own, on its own port, that the test may stop and restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="sidus-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, process=self.process)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Worker:
    """One `uvicorn sidus.asgi:application` process against the test database.

    Its port is bound here and handed over as a socket (tests/uvicorn_fd.py), never picked and released: no
    other process can take it in between."""

    def __init__(self, env: dict[str, str], *options: str) -> None:
        with socket.socket() as listening:
            listening.bind(("127.0.0.1", 0))
            listening.listen(128)
            self.port = listening.getsockname()[1]
            self.url = f"http://127.0.0.1:{self.port}"
            self.log = tempfile.NamedTemporaryFile(prefix="sidus-worker-", suffix=".log", delete=False)
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.uvicorn_fd", str(listening.fileno()), "sidus.asgi:application",
                 "--log-level", "warning", *options],
                cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, pass_fds=(listening.fileno(),),
            )
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def wait_until_serving(self, timeout: float = 30.0) -> None:
        """Until it answers HTTP: uvicorn reads requests only once the lifespan (the listener's join)
        completed, and the socket, bound before it started, takes connections from the first moment."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker on port {self.port} exited with {self.process.returncode}")
            try:
                self.client.get("/health/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise TimeoutError(f"worker on port {self.port} did not answer")

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def output(self) -> str:
        return Path(self.log.name).read_text()


def child_database_url() -> str:
    """The URL of the test database, for processes started by the tests."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER'] or 'postgres'}{password}@{host}:{port}/{db['NAME']}"


def worker_env(**overrides: str) -> dict[str, str]:
    database_url = child_database_url()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url,
           "DATABASE_POOL_MAX_SIZE": "4", "PYTHONPATH": str(ROOT),
           "WEB_CONCURRENCY": "1",  # one process per port: the tests talk to each worker by its port
           "RATE_LIMITS_ENABLED": "false"}  # load tests; tests/integration/test_ratelimits.py switches them on
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # lifted in the test process by a browser test alone
    env.update(overrides)
    return env


@contextmanager
def running_workers(count: int, **env_overrides: str) -> Iterator[list[Worker]]:
    workers = [Worker(worker_env(**env_overrides)) for _ in range(count)]
    try:
        for worker in workers:
            worker.wait_until_serving()
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def warm(workers, user_id: int) -> None:
    """Read a profile twice on each worker: it is in every L1."""
    for worker in workers:
        worker.client.get(f"/api/v1/users/{user_id}/")
        assert worker.client.get(f"/api/v1/users/{user_id}/").headers["x-cache"] == "L1"


def seen_everywhere(workers, user_id: int, bio: str, timeout: float = 1.0) -> list[float]:
    """Seconds until each worker answers with `bio`; fails past `timeout`."""
    start = time.monotonic()
    delays: list[float | None] = [None] * len(workers)
    while None in delays:
        elapsed = time.monotonic() - start
        assert elapsed < timeout, f"not converged after {elapsed:.3f}s: {delays}"
        for i, worker in enumerate(workers):
            if delays[i] is None and worker.client.get(f"/api/v1/users/{user_id}/").json().get("bio") == bio:
                delays[i] = elapsed
    return delays
