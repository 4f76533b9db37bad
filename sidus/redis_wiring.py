"""Where each Redis client of sidus connects: one server, each client on its own DB number, or,
with Redis Sentinel (docs/scaling.md), the master of the moment as the sentinels name it. Read
by sidus/settings.py alone."""
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.connection import parse_url

Sentinels = list[tuple[str, int]]


def redis_url_with_db(url: str, offset: int) -> str:
    """The same Redis server as `url`, `offset` DB numbers further on (cache, channels, broker)."""
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{db + offset}"))


def sentinels(entries: list[str]) -> Sentinels:
    """REDIS_SENTINELS' "host:port" entries."""
    return [(host, int(port)) for host, port in (entry.rsplit(":", 1) for entry in entries)]


def redis_db(url: str) -> int:
    return parse_url(url).get("db", 0)  # redis-py's reading, as users/cache/connection.py's


def cache(url: str, sentinels: Sentinels, master: str) -> dict[str, Any]:
    """django-redis's CACHES entry: the URL's server, or its DB and password on the master."""
    options: dict[str, Any] = {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}
    location = url
    if sentinels:
        parts = urlsplit(url)
        netloc = f"{parts.netloc.rpartition('@')[0]}@{master}".lstrip("@")
        location = urlunsplit(parts._replace(netloc=netloc))
        options.update({
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SENTINELS": sentinels,
            "SENTINEL_KWARGS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        })
    return {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location, "OPTIONS": options}


def channel_layer_host(url: str, sentinels: Sentinels, master: str) -> dict[str, Any]:
    """channels-redis's host: the URL, or the master by its sentinels."""
    if not sentinels:
        return {"address": url}
    return {
        "sentinels": sentinels, "master_name": master, "db": redis_db(url), "password": parse_url(url).get("password"),
        "sentinel_kwargs": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }


def celery_broker(url: str, sentinels: Sentinels) -> str:
    """Celery's broker URL: the URL, or kombu's list of sentinel:// URLs with its DB and password."""
    if not sentinels:
        return url
    password = urlsplit(url).password
    auth = f":{password}@" if password else ""
    return ";".join(f"sentinel://{auth}{host}:{port}/{redis_db(url)}" for host, port in sentinels)
