"""Fixtures of every tier. A test's tier is its folder: unit/ (no service at all), integration/
(PostgreSQL, Redis, RabbitMQ), system/ (servers, workers, browsers); each tier's conftest.py says
what it starts from. Plain helpers and factories are in tests/support.py."""
import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Queue
from rest_framework.test import APIClient

from tests.support import user_factory
from users.models import User

TIERS = ("unit", "integration", "system")


def pytest_configure(config: pytest.Config) -> None:
    """The coverage floor (setup.cfg) is the whole suite's: a selection (`-m "not slow"`, `-k`, some
    files) leaves code to the tests it did not pick, and must not fail for that."""
    everything = config.args_source == pytest.Config.ArgsSource.TESTPATHS or config.args == config.getini("testpaths")
    whole = everything and not config.option.markexpr and not config.option.keyword
    coverage = config.pluginmanager.getplugin("_cov")
    if not whole and coverage is not None:
        coverage.options.cov_fail_under = 0


def pytest_collection_modifyitems(items: list) -> None:
    """Each test is marked with its tier (`-m unit`), from its folder. A test that starts a Celery
    worker (the `inbox` fixture does) is slow: `-m "not slow"` skips it."""
    for item in items:
        tier = next((part for part in Path(item.fspath).parts if part in TIERS), None)
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))
        if "celery_worker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def make_user(db) -> Callable[..., User]:
    return user_factory


@pytest.fixture
def user(make_user) -> User:
    return make_user(first_name="Ada", last_name="Lovelace")


@pytest.fixture(autouse=True)
def runtime():
    """Each test holds a runtime of its own, as a new process would (users.runtime): nothing
    learnt, nothing remembered of an outage. No I/O: the unit tier runs with no service at all."""
    from users.lifespan import new_runtime
    from users.runtime import install

    fresh = new_runtime()
    previous = install(fresh)
    yield fresh
    fresh.local_cache.disable()
    install(previous)


@pytest.fixture
def empty_redis(settings):
    """The tests of the tiers with services start over empty cache tiers: no L2 keys."""
    import redis

    from users.cache.connection import MasterCheck

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    # Emptied, and so checked under this master: the running workers of a module keep reading L2
    # (else the first of them to probe would empty every tier again, its L1 included, mid-test).
    client.set(MasterCheck.MARKER, client.info("replication")["master_replid"])


@pytest.fixture(scope="session")
def empty_brokers(django_db_setup):
    """The channel layer's and Celery's Redis databases, emptied once a run."""
    import redis
    from django.conf import settings

    redis.Redis.from_url(settings.CHANNEL_LAYER_URL).flushdb()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()


@pytest.fixture
async def close_db_connections():
    """Async tests use the database from asgiref's thread; close it so the test DB can be dropped."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
async def listening(runtime, close_db_connections):
    """The runtime's invalidation listener and broadcaster, as a worker's lifespan runs them."""
    runtime.broadcaster.start()
    await runtime.listener.start()
    assert runtime.listener.joined.is_set()
    for _ in range(200):  # until its first probe came back: L1 answers from then on
        if runtime.local_cache.fresh:
            break
        await asyncio.sleep(0.005)
    assert runtime.local_cache.fresh
    yield runtime.listener
    await asyncio.wait_for(runtime.broadcaster.stop(), 5)  # as the lifespan bounds them
    await asyncio.wait_for(runtime.listener.stop(), 5)
    # A worker has one event loop for its life; each test has its own. channels-redis keeps its
    # receive locks in the process-wide layer, and a receive cancelled at the wrong moment leaves
    # one locked and bound to this loop: the next test's listener would fail on it. Start afresh.
    from channels.layers import channel_layers

    channel_layers.backends.clear()


@pytest.fixture
async def loading(runtime, close_db_connections):
    """The runtime's miss loader, its copy of the ended sessions and its database pool, as a
    worker's lifespan runs them."""
    await runtime.db.start()
    await runtime.ended_sessions.read()  # as its reader in the lifespan does, before the first request
    runtime.ended_sessions.start()
    yield runtime.loader
    await runtime.loader.stop()
    await runtime.ended_sessions.stop()
    await runtime.db.stop()


@pytest.fixture
async def asgi_client():
    import httpx

    from sidus.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield client


@pytest.fixture
def hops(monkeypatch):
    """The thread hops made while the test runs, either way (SyncToAsync, AsyncToSync), in order."""
    counted = []
    from asgiref.sync import AsyncToSync, SyncToAsync

    for cls in (SyncToAsync, AsyncToSync):
        def counting(self, *args, _call=cls.__call__, _name=cls.__name__, **kwargs):
            counted.append(_name)
            return _call(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__call__", counting)
    return counted


@pytest.fixture
def celery_worker():
    """A real Celery worker in this process, on the test broker (Redis) and the test database."""
    from celery.contrib.testing.worker import start_worker
    from django.db import connections

    from sidus.celery import app as celery_app

    # Its shutdown may wait for an email in flight to a mail server the test has stopped: up to
    # EMAIL_TIMEOUT (10 s). Past the shutdown timeout celery raises and leaves its thread behind,
    # and the next test's worker never starts.
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker
    connections.close_all()


@pytest.fixture
def inbox(settings, celery_worker):
    """A real SMTP server that a real Celery worker sends every email to."""
    from tests.smtp import FRONTEND_URL, SMTPServer

    with SMTPServer() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
        settings.FRONTEND_URL = FRONTEND_URL
        yield smtp.inbox


@pytest.fixture
def exchange(settings):
    """A topic exchange of this test's own on the real broker, and a queue bound to all of it."""
    settings.EVENTS_EXCHANGE = f"sidus.events.test-{uuid.uuid4().hex[:12]}"
    with Connection(settings.EVENTS_BROKER_URL) as connection:
        channel = connection.channel()
        topic = Exchange(settings.EVENTS_EXCHANGE, "topic", durable=True)(channel)
        topic.declare()
        queue = Queue(f"{settings.EVENTS_EXCHANGE}.all", topic, routing_key="user.#")(channel)
        queue.declare()
        yield Received(queue)
        queue.delete()
        topic.delete()


class Received:
    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def messages(self) -> list:
        messages = []
        while (message := self.queue.get(no_ack=True)) is not None:
            messages.append(message)
        return messages

    def events(self) -> list[dict]:
        return [json.loads(message.body) for message in self.messages()]
