"""The user cache: every Redis and Channels call of sidus lives in this package.

The edge's profile route (users/edge/profile.py) answers plain JSON reads of a profile from L1 (no I/O),
else from L2 (one Redis round trip), 304s included, with no thread hop; on a miss it keeps the
exact status, headers and body Django produced (`answers`) in both tiers.
- `local`: L1, a bounded LRU in each worker, answering only while proven fresh.
- `shared`: L2, Redis, shared by every worker, read with redis.asyncio; `reads`: the readers of
  one turn of the loop share one MGET.
- `invalidation`: after a change commits, bump the user's generation, delete L2, drop L1; the
  group message goes out through the worker loop's `broadcast`er, coalesced and numbered by one
  count in Redis. Generations (in Redis and in L1) stop a reader that read the row before the
  write from storing it after. `listener`: each worker applies the others' messages, and probes
  its own channel every quarter of USER_CACHE_MAX_STALENESS; `receipts`: a returned probe with no
  number missing before it is the proof that keeps L1 on, a hole in the numbers empties L1.
  `refresh`: what another worker's write dropped from L1 is read again at once, so that a
  profile being read stays in L1 through its writes.
- `unsent`: the invalidations a writer cut off from Redis could not send, kept in PostgreSQL:
  every worker's probe reads them, keeps those users out of L2 and sends them itself.
- `loader`: a miss read from PostgreSQL on the event loop and rendered like Django's answer.
  The edge's lean profile update writes there too, and invalidates with `invalidate_users_async`.
- `layer`: the channel layer of the group, channels-redis's with one unawaited task made quiet.
- `connection`: the Redis clients and their health; `sync`: `run_sync`, by which sync code calls
  the one (async) implementation of each call; `keys`: every key.
Each part that lives as long as a process is a class, and each process holds one of each in its
runtime (`users.runtime`), which a worker's ASGI lifespan starts (`users.lifespan`).
"""
from users.cache.connection import ping, ping_channel_layer, redis_client
from users.cache.invalidation import clear_all_users, invalidate_users, invalidate_users_async
from users.cache.keys import INVALIDATION_GROUP, INVALIDATION_MESSAGE, user_cache_key, user_generation_key
from users.cache.shared import read_generation
from users.cache.sync import run_sync

__all__ = [
    "INVALIDATION_GROUP", "INVALIDATION_MESSAGE", "clear_all_users", "invalidate_users", "invalidate_users_async",
    "ping", "ping_channel_layer", "read_generation", "redis_client", "run_sync", "user_cache_key",
    "user_generation_key",
]
