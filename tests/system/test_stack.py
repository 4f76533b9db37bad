"""What CI can check of the deployment without a Docker engine.

The compose file's own web and worker commands are started as processes against the local
PostgreSQL and Redis, and a registration is followed until its welcome email arrives, also across
a broker outage.
"""
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from io import StringIO

import httpx
import pytest
import yaml
from cryptography.fernet import Fernet
from django.core.management import call_command

from tests.servers import (
    ROOT,
    RedisServer,
    child_database_url,
    free_port,
    needs_redis_server,
    wait_for_port,
    wait_until,
)
from tests.smtp import SMTPServer
from tests.support import asgi_get
from users.models import OutboxEmail, User

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_", "CELERY_", "EMAIL_"))}
    env.update(DJANGO_SECRET_KEY=secrets.token_urlsafe(50), PYTHONPATH=str(ROOT), **overrides)
    return env


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=production_env(**env), capture_output=True, text=True
    )


def test_deploy_check_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_DEBUG="false", DJANGO_HTTPS="true",
                    EMAIL_URL="smtp://mail.example.com:25", MFA_ENCRYPTION_KEY=Fernet.generate_key().decode(),
                    MFA_REQUIRED_FOR_STAFF="true", JWT_KEYS_ENCRYPTION_KEY=Fernet.generate_key().decode())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_fails_while_emails_and_their_links_go_to_the_log():
    result = manage("check", "--deploy", DJANGO_DEBUG="false", DJANGO_HTTPS="true")  # EMAIL_URL's default
    assert result.returncode == 1 and "sidus.E001" in result.stderr and "EMAIL_URL" in result.stderr
    assert manage("check", "--deploy", DJANGO_DEBUG="true").returncode == 0  # development: the log is the inbox


def test_debug_logging_prints_each_line_once():
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('django.request').warning('probe-request'); "
        "logging.getLogger('users.cache').warning('probe-users')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
        env=production_env(DJANGO_SETTINGS_MODULE="sidus.settings", DJANGO_DEBUG="true", DJANGO_LOG_LEVEL="DEBUG"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("probe-request") == 1 and result.stderr.count("probe-users") == 1


def test_tests_take_the_three_redis_dbs_after_the_apps_own():
    script = "from tests import settings as s; print(s.REDIS_URL, s.CHANNEL_LAYER_URL, s.CELERY_BROKER_URL)"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env=production_env(REDIS_URL="redis://127.0.0.1:6379/4"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"redis://127.0.0.1:6379/{n}" for n in (7, 8, 9)]


def test_secret_key_is_required_without_debug():
    env = production_env(DJANGO_DEBUG="false")
    del env["DJANGO_SECRET_KEY"]
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr


def test_every_setting_read_from_the_environment_is_documented():
    """An operator finds every variable in README or docs/, with its default."""
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]+)"', (ROOT / "sidus" / "settings.py").read_text()))
    docs = "".join(path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
    assert len(read) > 40  # the pattern still finds them
    assert sorted(name for name in read if f"`{name}`" not in docs) == []


@pytest.mark.django_db
def test_migrations_are_complete():
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


@pytest.mark.django_db
def test_createsuperuser_works_non_interactively(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-Admin-pass")
    call_command("createsuperuser", interactive=False, username="root", email="root@example.com", stdout=StringIO())
    admin = User.objects.get(username="root")
    assert admin.is_superuser and admin.is_staff and admin.check_password("s3cret-Admin-pass")


@pytest.mark.django_db
def test_clear_user_cache_command(user):
    assert asgi_get(f"/api/v1/users/{user.pk}/").headers["X-Cache"] == "MISS"
    assert asgi_get(f"/api/v1/users/{user.pk}/").headers["X-Cache"] == "L2"
    out = StringIO()
    call_command("clear_user_cache", stdout=out)
    assert "Removed 1 cached profile" in out.getvalue()
    assert asgi_get(f"/api/v1/users/{user.pk}/").headers["X-Cache"] == "MISS"


def test_compose_file_runs_without_an_env_file():
    text = (ROOT / "docker-compose.yml").read_text()
    bare = [v for v in re.findall(r"(?<!\$)\$\{([^}]+)\}", text) if ":-" not in v]
    assert bare == [], f"variables without a local default: {bare}"
    services = COMPOSE["services"]
    assert {"postgres", "redis", "web", "worker", "mailpit", "proxy"} <= set(services)
    # `docker compose up --scale web=3`: no replica binds a host port, the proxy does, in front.
    assert "ports" not in services["web"] and services["web"]["environment"]["TRUSTED_PROXY_COUNT"] == "1"
    assert services["proxy"]["ports"] == ["${WEB_PORT:-8000}:8000"]
    assert services["proxy"]["environment"]["SIDUS_MAX_BODY"] == services["web"]["environment"][
        "DATA_UPLOAD_MAX_MEMORY_SIZE"]  # one limit, in the app and in front of it
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert all("healthcheck" in services[name] for name in ("postgres", "redis", "mailpit", "web", "proxy"))


def compose_command(service: str, port: int | None = None) -> list[str]:
    command = COMPOSE["services"][service]["command"]
    if port is not None:
        command = command.replace("--host 0.0.0.0", "--host 127.0.0.1").replace("--port 8000", f"--port {port}")
    return [sys.executable, "-m", *shlex.split(command)] if command.startswith(("uvicorn", "celery")) else shlex.split(
        command
    )


@needs_redis_server
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_compose_web_and_worker_register_and_email_across_a_broker_outage():
    redis_server = RedisServer()
    redis_server.start()
    processes: list[subprocess.Popen] = []
    with SMTPServer() as smtp:
        env = production_env(
            DATABASE_URL=child_database_url(),
            REDIS_URL=redis_server.url,
            EMAIL_URL=f"smtp://127.0.0.1:{smtp.port}",
            WEB_CONCURRENCY="2",
            EMAIL_OUTBOX_DRAIN_INTERVAL="1",
            EMAIL_OUTBOX_DRAIN_GRACE="1",
            DATABASE_POOL_MAX_SIZE="3",
        )
        port = free_port()
        try:
            for service, service_port in (("web", port), ("worker", None)):
                processes.append(subprocess.Popen(
                    compose_command(service, service_port), cwd=ROOT, env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))
            wait_for_port(port, timeout=30, process=processes[0])
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
            wait_until(lambda: client.get("/health/").status_code == 200, timeout=30)

            first = client.post("/api/v1/users/", json={
                "username": "compose", "email": "compose@example.com", "password": "correct-horse-battery-9"
            })
            assert first.status_code == 201, first.text
            wait_until(lambda: smtp.inbox.to("compose@example.com"), timeout=30)
            assert client.get("/api/docs/").status_code == 200

            redis_server.stop()  # the broker goes away mid-run
            started = time.monotonic()
            second = client.post("/api/v1/users/", json={
                "username": "outage", "email": "outage@example.com", "password": "correct-horse-battery-9"
            })
            assert second.status_code == 201, second.text
            assert time.monotonic() - started < 5
            assert client.get(f"/api/v1/users/{second.json()['id']}/").status_code == 200
            welcome = OutboxEmail.objects.get(user_id=second.json()["id"], kind=OutboxEmail.Kind.WELCOME)
            assert welcome.status == OutboxEmail.Status.PENDING

            redis_server.start()
            wait_until(lambda: smtp.inbox.to("outage@example.com"), timeout=60)
            time.sleep(3)  # a few more drain rounds: still exactly one email each
            assert len(smtp.inbox.to("compose@example.com")) == 1
            assert len(smtp.inbox.to("outage@example.com")) == 1
            assert OutboxEmail.objects.filter(status=OutboxEmail.Status.SENT).count() == 2
            client.close()
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
            redis_server.close()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_readme_local_path_runs_web_and_worker_from_one_shell_on_another_port():
    """As the README says: one shell, `DJANGO_DEBUG=true`, `honcho start` (the Procfile); WEB_PORT
    moves the API and the emailed links with it; a clean start logs nothing at WARNING."""
    port = free_port()
    env = production_env(DJANGO_SETTINGS_MODULE="sidus.settings", DJANGO_DEBUG="true", WEB_PORT=str(port),
                         DATABASE_URL=child_database_url())
    env.pop("DJANGO_SECRET_KEY")  # DJANGO_DEBUG's local key, as a newcomer has it
    honcho = subprocess.Popen([sys.executable, "-m", "honcho", "start"], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=30, process=honcho)
        body = {"username": "newbie", "email": "newbie@example.com", "password": "analytical-engine-1843"}
        created = httpx.post(f"http://localhost:{port}/api/v1/users/", json=body, timeout=10)
        assert created.status_code == 201, created.text
        wait_until(lambda: OutboxEmail.objects.filter(status=OutboxEmail.Status.SENT).exists(), timeout=30)
    finally:
        os.killpg(honcho.pid, signal.SIGTERM)
        output = honcho.communicate(timeout=30)[0]
    assert f"http://localhost:{port}/verify-email?uid=" in output, output[-3000:]  # the worker's printed email
    assert re.search(r"\bWARNING\b", output) is None, output[-3000:]
