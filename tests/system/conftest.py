"""The system tier: real servers (uvicorn workers, Redis, nginx, PgBouncer, an SMTP server) and
browsers, started by the tests themselves, over the services the integration tier uses."""
import pytest

from tests.servers import RedisServer


@pytest.fixture(autouse=True)
def empty_services(empty_redis, empty_brokers) -> None:
    """Every test starts over empty cache tiers and brokers."""


@pytest.fixture
def own_redis():
    """A Redis server of the test's own, to stop, hang and restart."""
    server = RedisServer()
    server.start()
    yield server
    server.close()
