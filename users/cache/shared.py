"""L2: the answers of the edge in Redis, shared by every worker, stored only if no write
committed since the generation was read (a Lua check-and-set), and read with the generation in
one MGET. The reads of one turn of the loop share one MGET (the runtime's `reads`), its stores
one pipeline (`stores`)."""
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from users.cache.answers import CachedResponse, decode, encode
from users.cache.connection import redis_call, redis_client
from users.cache.keys import user_cache_key, user_generation_key
from users.runtime import current

# Store only if the generation is still the one read before the database: a write that committed
# (and bumped it) in between wins.
_SET_IF_GENERATION = """
if (redis.call('GET', KEYS[2]) or '0') == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""

UNREACHABLE = object()  # the generation when Redis did not answer: store nothing


async def read_answer(user_id: int) -> tuple[CachedResponse | None, Any]:
    """The stored answer (or None) and the generation to store a fresh one under; one round trip."""
    stored, generation = await _read(user_id)
    return (decode(stored) if stored is not None else None), generation


async def read_generation(user_id: int) -> Any:
    """The generation alone: read by a writer before its write, so that it can keep its own
    answer (`invalidate_users_async(fresh=...)`) unless another write came in between."""
    return (await _read(user_id))[1]


async def _read(user_id: int) -> tuple[bytes | None, Any]:
    runtime = current()
    health = runtime.redis.health
    if not (health.available() and runtime.redis.master_check.trusted):  # after an error: the master checked first
        return None, UNREACHABLE
    if runtime.unsent.gates(user_id):  # changed while its writer could not reach Redis: L2 may be older
        return None, UNREACHABLE
    try:
        stored, generation = await runtime.reads.submit(user_id)
    except RedisError as exc:
        health.failed(exc)
        return None, UNREACHABLE
    health.succeeded()
    return stored, generation


async def store_answer(user_id: int, answer: CachedResponse, generation: Any) -> None:
    """Keep `answer` unless the user changed after `generation` was read."""
    if generation is UNREACHABLE:
        return
    runtime = current()
    try:
        await runtime.stores.submit(store_command(user_id, answer, generation or b"0"))
    except RedisError as exc:
        runtime.redis.health.failed(exc)


async def store_many(commands: list[tuple[Any, ...]]) -> list[Any]:
    """Several `store_command`s in one pipeline (no transaction: each is atomic on its own)."""
    def send() -> Any:  # a pipeline for each try: execute() empties it
        pipe = redis_client().pipeline(transaction=False)
        for command in commands:
            pipe.eval(*command)
        return pipe.execute()

    return await redis_call(send)


def store_command(user_id: int, answer: CachedResponse, generation: bytes | int) -> tuple[Any, ...]:
    """The arguments of EVAL that keeps `answer` if the generation is still `generation`."""
    return (_SET_IF_GENERATION, 2, user_cache_key(user_id), user_generation_key(user_id), generation,
            encode(answer), settings.USER_CACHE_L2_TTL)
