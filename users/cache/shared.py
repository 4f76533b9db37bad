"""L2: the public representation in Redis, shared by every worker, stored only if no write
committed since it was read (a Lua check-and-set on the user's generation)."""
import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from users.cache.connection import _once_more_async, redis_client, redis_health
from users.cache.keys import CACHEABLE_HEADER, CAPTURE_SCOPE_KEY, user_cache_key, user_generation_key

# Store only if the generation is still the one read before the database: a write that committed
# (and bumped it) in between wins.
_SET_IF_GENERATION = """
if (redis.call('GET', KEYS[2]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


async def user_public_data(
    user_id: int, load: Callable[[int], Awaitable[dict[str, Any] | None]]
) -> tuple[dict[str, Any] | None, str]:
    """The public representation and where it came from ("L2" or "MISS"); None if no such user."""
    if not redis_health.available():
        return await load(user_id), "MISS"
    client = redis_client()
    key, generation_key = user_cache_key(user_id), user_generation_key(user_id)
    try:
        cached, generation = await _once_more_async(lambda: client.mget(key, generation_key))
    except RedisError as exc:
        redis_health.failed(exc)
        return await load(user_id), "MISS"
    redis_health.succeeded()
    if cached is not None:
        return json.loads(cached), "L2"
    data = await load(user_id)
    if data is not None:
        try:
            await client.eval(
                _SET_IF_GENERATION, 2, key, generation_key,
                generation or b"0", json.dumps(data), settings.USER_CACHE_L2_TTL,
            )
        except RedisError as exc:
            redis_health.failed(exc)
    return data, "MISS"


def cacheable_headers(request: Any, user_id: int) -> dict[str, str]:
    """Marks a response as the public representation of `user_id`, if the ASGI layer will keep it."""
    scope = getattr(request, "scope", None) or {}
    return {CACHEABLE_HEADER: str(user_id)} if scope.get(CAPTURE_SCOPE_KEY) else {}
