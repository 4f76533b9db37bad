"""Logged-out sessions: a denylist entry per session id, kept as long as an access token lives."""
from datetime import timedelta

from django_redis import get_redis_connection
from redis.exceptions import RedisError

from users.cache.connection import redis_call, redis_client, redis_health
from users.cache.keys import revoked_session_key


def session_revoke(session_id: str, *, ttl: timedelta) -> None:
    """Remember a logged-out session for as long as one of its access tokens can still be valid."""
    try:
        get_redis_connection("default").set(revoked_session_key(session_id), 1, ex=ttl)
    except (RedisError, OSError) as exc:
        redis_health.failed(exc)  # its refresh token is blacklisted anyway; the access token ages out


async def session_is_revoked(session_id: str) -> bool:
    """Fails open while Redis is away: one warning per outage, no 5xx for every logged-in user."""
    if not redis_health.available():
        return False
    try:
        return bool(await redis_call(lambda: redis_client().exists(revoked_session_key(session_id))))
    except (RedisError, OSError) as exc:
        redis_health.failed(exc)
        return False
