"""L2 reads coalesced: the reads asked for in one turn of a worker's event loop go to Redis as one
MGET (the runtime's `reads`, a `users.cache.batches.TurnBatcher`). MGET is atomic, so each reader's
answer and generation are still read together."""
from typing import Any

from users.cache.connection import redis_call, redis_client
from users.cache.keys import user_cache_key, user_generation_key


async def read_many(user_ids: list[int]) -> list[tuple[Any, Any]]:
    """(stored answer or None, generation or None) of each user, in one MGET; raises the RedisError."""
    keys = [key for user_id in user_ids for key in (user_cache_key(user_id), user_generation_key(user_id))]
    values: list[Any] = await redis_call(lambda: redis_client().mget(keys))
    return [(values[2 * index], values[2 * index + 1]) for index in range(len(user_ids))]
