"""The integration tier: the code against real PostgreSQL, Redis and RabbitMQ, in this process."""
import pytest


@pytest.fixture(autouse=True)
def empty_services(empty_redis, empty_brokers) -> None:
    """Every test starts over empty cache tiers and brokers."""
