"""nginx in front, from the repository's own config (deploy/nginx/sidus.conf.template), before two
uvicorn workers: it balances, hands on the client's address, cuts slow clients, refuses what
the app would refuse with the app's words, and a worker stopped mid-burst costs no request."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from string import Template

import httpx
import pytest
from django.conf import settings

from tests.servers import ROOT, Worker, free_port, running_workers, wait_for_port
from tests.support import PASSWORD
from users.auth.tokens import token_pair
from users.mail import links
from users.models import User

NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")  # root's PATH may lack sbin
pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="needs Debian's nginx (.ci/run installs it)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
]

TEMPLATE = ROOT / "deploy" / "nginx" / "sidus.conf.template"
CLIENT_TIMEOUT = 2.0


class Nginx:
    """nginx with the template filled in as the nginx image fills it, on a port of its own."""

    def __init__(self, upstreams: list[str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sidus-nginx-"))
        self.dir.chmod(0o755)  # its workers run as nobody
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._write(upstreams)
        temp = " ".join(f"{name}_temp_path {self.dir / name};" for name in
                        ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.dir / "nginx.conf").write_text(
            f"daemon off; worker_processes 1; pid {self.dir / 'nginx.pid'}; error_log {self.dir / 'error.log'} warn;\n"
            f"events {{ worker_connections 512; }}\n"
            f"http {{ access_log off; {temp} include {self.dir / 'sidus.conf'}; }}\n"
        )
        self.process = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                        stderr=subprocess.PIPE, text=True)
        wait_for_port(self.port, process=self.process)

    def _write(self, upstreams: list[str]) -> None:
        server = Template(TEMPLATE.read_text()).safe_substitute(
            SIDUS_LISTEN=f"127.0.0.1:{self.port}",
            SIDUS_UPSTREAMS=" ".join(f"server {upstream.removeprefix('http://')};" for upstream in upstreams),
            SIDUS_CLIENT_TIMEOUT=f"{CLIENT_TIMEOUT:.0f}s",
            SIDUS_MAX_BODY=str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE),
            SIDUS_ACCESS_LOG=str(self.dir / "access.log"),
        )
        (self.dir / "sidus.conf").write_text(server)

    def reload(self, upstreams: list[str]) -> None:
        """New upstreams, as a deploy sets them: nginx's old workers finish what they hold."""
        self._write(upstreams)
        self.process.send_signal(signal.SIGHUP)

    def errors(self) -> str:
        return (self.dir / "error.log").read_text()

    def access_log(self) -> str:
        return (self.dir / "access.log").read_text()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def nginx_before_two_workers(**env: str) -> Iterator[tuple[Nginx, list[Worker]]]:
    with running_workers(2, TRUSTED_PROXY_COUNT="1", **env) as workers:
        proxy = Nginx([worker.url for worker in workers])
        try:
            yield proxy, workers
        finally:
            proxy.close()


@pytest.fixture
def behind_nginx():
    # A day's window: a fixed window ending mid-test would start the count again.
    with nginx_before_two_workers(RATE_LIMITS_ENABLED="true", RATE_LIMIT_SIGNUP="3/1d/ip") as both:
        yield both


def test_the_proxy_balances_and_the_app_sees_the_clients_address(behind_nginx):
    proxy, _ = behind_nginx
    user = User.objects.create_user("behind", "behind@example.com", PASSWORD)
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        tiers = [client.get(f"/api/v1/users/{user.pk}/").headers["x-cache"] for _ in range(4)]
        assert tiers == ["MISS", "L2", "L1", "L1"]  # one worker read it first, the other from Redis

        # Whatever X-Forwarded-For a client sends, the limits count the address the proxy saw.
        for i in range(4):
            body = {"username": f"spoof{i}", "email": f"spoof{i}@example.com", "password": PASSWORD}
            answer = client.post("/api/v1/users/", json=body, headers={"X-Forwarded-For": f"203.0.113.{i}"})
            assert answer.status_code == (201 if i < 3 else 429), answer.text

        login = client.post("/api/v1/auth/token/", json={"username": "behind", "password": PASSWORD},
                            headers={"X-Forwarded-For": "198.51.100.7"})
        sessions = client.get("/api/v1/auth/sessions/", headers={"Authorization": f"Bearer {login.json()['access']}"})
        assert [s["ip"] for s in sessions.json()["results"]] == ["127.0.0.1"]


def test_a_body_over_the_limit_gets_the_apps_own_413_from_the_proxy(behind_nginx):
    proxy, workers = behind_nginx
    body = b'{"bio": "' + b"x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b'"}'
    headers = {"Content-Type": "application/json"}
    from_proxy = httpx.post(f"{proxy.url}/api/v1/users/", content=body, headers=headers)
    from_app = httpx.post(f"{workers[0].url}/api/v1/users/", content=body, headers=headers)
    assert from_proxy.status_code == from_app.status_code == 413
    assert from_proxy.json() == from_app.json()


def seconds_until_cut(port: int, data: bytes) -> float:
    """Sends `data` and nothing more; how long until the proxy gives up on this client."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(data)
        started = time.monotonic()
        sock.settimeout(CLIENT_TIMEOUT + 5)
        while sock.recv(4096):  # a 408, if any, then the close
            pass
        return time.monotonic() - started


def test_slow_header_and_slow_body_clients_are_cut_after_the_timeout(behind_nginx):
    proxy, _ = behind_nginx
    slow = {
        "header": b"GET /health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
        "body": (b"POST /api/v1/users/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"username\": "),
    }
    cut: dict[str, float] = {}
    threads = [threading.Thread(target=lambda k=kind: cut.__setitem__(k, seconds_until_cut(proxy.port, slow[k])))
               for kind in slow]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for kind, seconds in cut.items():
        assert CLIENT_TIMEOUT - 0.5 <= seconds <= CLIENT_TIMEOUT + 2, (kind, seconds)


def test_a_worker_stopped_during_a_write_burst_costs_no_request():
    with nginx_before_two_workers() as (proxy, workers):  # rate limits off: a burst
        a_worker_stopped_during_a_write_burst_costs_no_request(proxy, workers)


def a_worker_stopped_during_a_write_burst_costs_no_request(proxy: Nginx, workers: list[Worker]) -> None:
    users = [User.objects.create_user(f"burst{i}", f"burst{i}@example.com", PASSWORD) for i in range(4)]
    statuses: list[int] = []
    stop = threading.Event()

    tokens = {user.pk: token_pair(user)["access"] for user in users}  # here: the threads open no database connection

    def write(user: User) -> None:
        auth = {"Authorization": f"Bearer {tokens[user.pk]}"}
        # A connection per request: reloading nginx closes its idle client connections, and a
        # client that sent on one at that instant sees it closed, whatever the app does.
        with httpx.Client(base_url=proxy.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    answer = client.patch("/api/v1/users/me/", json={"bio": f"burst {n}"}, headers=auth)
                except httpx.TransportError as exc:
                    statuses.append(type(exc).__name__)
                else:
                    statuses.append(answer.status_code)

    writers = [threading.Thread(target=write, args=(user,)) for user in users]
    for writer in writers:
        writer.start()
    time.sleep(1)
    # A deploy takes the replica out of the proxy, then stops it (Kubernetes: the endpoints, then
    # SIGTERM after preStop). Stopped while still routed to, a request that reached its accept
    # queue in the instant it stops listening is reset, and nginx cannot retry a PATCH: 1 in ~500.
    proxy.reload([workers[1].url])
    time.sleep(0.5)
    workers[0].process.send_signal(signal.SIGTERM)  # what it still serves finishes, its invalidations go out
    assert workers[0].process.wait(15) in (0, -signal.SIGTERM)  # uvicorn re-raises it once it has shut down
    time.sleep(1)
    stop.set()
    for writer in writers:
        writer.join()
    assert len(statuses) > 100 and set(statuses) == {200}, ({s: statuses.count(s) for s in set(statuses)},
                                                            proxy.errors())
    with httpx.Client(base_url=workers[1].url) as survivor:  # every write is there, told to the survivor
        for user in users:
            user.refresh_from_db()
            assert survivor.get(f"/api/v1/users/{user.pk}/").json()["bio"] == user.bio


def test_a_page_form_posted_through_the_proxy_passes_djangos_origin_check(behind_nginx):
    """A browser posts with `Origin: http://host:port`; Django compares it with the Host it is
    handed, so the proxy must hand on the port as well."""
    proxy, _ = behind_nginx
    user = User.objects.create_user("origin", "origin@example.com", PASSWORD)
    link = {"uid": links.uid_encode(user), "token": links.email_verification_token.make_token(user)}
    with httpx.Client(base_url=proxy.url, timeout=10) as client:
        page = client.get("/verify-email", params=link, follow_redirects=True)  # the link, then the bare page
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        done = client.post("/verify-email", data={"csrfmiddlewaretoken": token},
                           headers={"Origin": proxy.url, "Referer": str(page.url)})
    assert done.status_code == 200 and "Address verified" in done.text, done.text[:500]
    # The link's first GET is in the proxy's access log with its path and uid, never its token.
    log = proxy.access_log()
    assert f'"GET /verify-email?uid={link["uid"]}&token=[redacted] HTTP/1.1" 302' in log, log
    assert link["token"] not in log
