"""The user cache: every Redis and Channels call of sidus lives in this package.

- `asgi`: the layer before Django. It answers plain JSON reads of a profile from L1 (no I/O),
  else from L2 (one Redis round trip), 304s included, with no thread hop; on a miss it keeps the
  exact status, headers and body Django produced (`answers`) in both tiers.
- `local`: L1, a bounded LRU in each worker, answering only while proven fresh.
- `shared`: L2, Redis, shared by every worker, read with redis.asyncio; `reads`: the readers of
  one turn of the loop share one MGET.
- `invalidation`: after a change commits, bump the user's generation, delete L2, drop L1; the
  group message goes out through the worker loop's `broadcast`er, coalesced, numbered, and with a
  heartbeat when idle. Generations (in Redis and in L1) stop a reader that read the row before
  the write from storing it after. `listener`: each worker applies the others' messages, empties
  L1 at a gap in a sender's numbers, and takes its own heartbeat back as the proof that keeps L1
  on for USER_CACHE_MAX_STALENESS. `refresh`: what another worker's write dropped from L1 is read
  again at once, so that a profile being read stays in L1 through its writes.
- `loader`: a miss read from PostgreSQL on the event loop and rendered like Django's answer.
  The lean profile update (users/profile_update.py) writes there too, and invalidates with
  `invalidate_users_async`.
- `lifespan`: starts and stops the listener, the broadcaster and the loader with the worker.
- `connection`: the Redis clients and their health; `keys`: every key; `sessions`: logouts.
"""
from users.cache.asgi import UserCacheMiddleware
from users.cache.broadcast import broadcaster
from users.cache.connection import ping, ping_channel_layer, redis_client, redis_health
from users.cache.invalidation import _pending, clear_all_users, invalidate_users, invalidate_users_async
from users.cache.keys import (
    CACHEABLE_HEADER,
    CAPTURE_SCOPE_KEY,
    INVALIDATION_GROUP,
    INVALIDATION_MESSAGE,
    user_cache_key,
    user_generation_key,
)
from users.cache.lifespan import lifespan
from users.cache.listener import InvalidationListener, listener
from users.cache.loader import loader
from users.cache.local import LocalCache, local_cache
from users.cache.sessions import session_is_revoked, session_is_revoked_async, session_revoke
from users.cache.shared import cacheable_headers, capturing, read_generation, user_public_data

__all__ = [
    "CACHEABLE_HEADER", "CAPTURE_SCOPE_KEY", "INVALIDATION_GROUP", "INVALIDATION_MESSAGE", "InvalidationListener",
    "LocalCache", "UserCacheMiddleware", "_pending", "broadcaster", "cacheable_headers", "capturing",
    "clear_all_users", "invalidate_users", "invalidate_users_async", "lifespan", "listener", "loader",
    "local_cache", "ping", "ping_channel_layer", "read_generation", "redis_client", "redis_health",
    "session_is_revoked", "session_is_revoked_async", "session_revoke", "user_cache_key", "user_generation_key",
    "user_public_data",
]
