"""The two cache tiers of the public profile, their invalidation, and the per-worker listener.

Every Redis and Channels call of sidus lives here.

- L1: a bounded LRU in each worker process, served by `UserCacheMiddleware` in front of Django,
  so a hit costs no thread hop and no network round trip.
- L2: Redis, shared by all workers, read with redis.asyncio on the request path.
- Invalidation: after a change commits, `invalidate_users()` bumps the user's generation in
  Redis, deletes the L2 value and sends one group message; every worker's listener drops its L1
  entry. Generations (in Redis and in L1) stop a reader that read the row before the write from
  storing it after the invalidation.
"""
import asyncio
import functools
import json
import logging
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis.asyncio as aioredis
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.urls import reverse
from django_redis import get_redis_connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

INVALIDATION_GROUP = "sidus.users.invalidate"
INVALIDATION_MESSAGE = "users.invalidate"
# Set by the view on a cacheable public representation, only when the ASGI layer asked for it
# (CAPTURE_SCOPE_KEY in the scope); the layer strips it, so no client ever sees it.
CACHEABLE_HEADER = "X-Sidus-Cacheable"
CAPTURE_SCOPE_KEY = "sidus.capture"
GENERATION_TTL = 7 * 86400
REJOIN_INTERVAL = 3600.0  # well inside the channel layer's group_expiry (86400 s)
STARTUP_JOIN_TIMEOUT = 2.0


def user_cache_key(user_id: int) -> str:
    return f"sidus:user:{user_id}"


def user_generation_key(user_id: int) -> str:
    return f"sidus:user:{user_id}:gen"


# --- Redis health: one warning per outage, and a short back-off instead of a timeout per request --


class _RedisHealth:
    RETRY_AFTER = 1.0

    def __init__(self) -> None:
        self._down_until = 0.0
        self._down = False

    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.RETRY_AFTER
        if not self._down:
            self._down = True
            logger.warning("Redis unavailable, serving users from PostgreSQL: %r", exc)

    def succeeded(self) -> None:
        self._down_until = 0.0
        if self._down:
            self._down = False
            logger.warning("Redis is back, user cache resumed")


redis_health = _RedisHealth()

# redis.asyncio clients are bound to the loop that made them: one per event loop.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis]" = weakref.WeakKeyDictionary()


def redis_client() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
        _clients[loop] = client
    return client


async def ping() -> None:
    await redis_client().ping()


async def ping_channel_layer() -> None:
    await get_channel_layer().connection(0).ping()


def _once_more(call: Callable[[], Any]) -> Any:
    """After a Redis restart each pooled connection fails once: retry once on a fresh one."""
    try:
        return call()
    except RedisConnectionError:
        return call()


async def _once_more_async(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await call()
    except RedisConnectionError:
        return await call()


# --- L1 -----------------------------------------------------------------------------------------


class LocalCache:
    """A bounded, thread-safe LRU with a TTL and a generation per key.

    `token(key)` taken before reading the source, passed to `set()`, makes the store a no-op if
    the key was invalidated (or the cache cleared) meanwhile. on_commit callbacks invalidate from
    worker threads while the event loop reads, hence the lock.
    """

    def __init__(self, max_entries: int, ttl: float, max_generations: int = 100_000) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.max_generations = max_generations
        self.enabled = False
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[float, Any]] = OrderedDict()
        self._generations: dict[int, int] = {}
        self._epoch = 0

    def __len__(self) -> int:
        return len(self._entries)

    def token(self, key: int) -> tuple[int, int]:
        with self._lock:
            return self._epoch, self._generations.get(key, 0)

    def get(self, key: int) -> Any:
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                return None
            if item[0] <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return item[1]

    def set(self, key: int, value: Any, token: tuple[int, int]) -> bool:
        with self._lock:
            if not self.enabled or token != (self._epoch, self._generations.get(key, 0)):
                return False
            self._entries[key] = (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return True

    def invalidate(self, keys: Iterable[int]) -> None:
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
                self._generations[key] = self._generations.get(key, 0) + 1
            if len(self._generations) > self.max_generations:
                # Forget the generations; a new epoch still fails every token taken before.
                self._generations.clear()
                self._epoch += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generations.clear()
            self._epoch += 1

    def enable(self) -> None:
        self.enabled = True

    def disable(self) -> None:
        """While invalidations may be missed (no listener), keep nothing."""
        self.enabled = False
        self.clear()


local_cache = LocalCache(settings.USER_CACHE_L1_MAX_ENTRIES, settings.USER_CACHE_L1_TTL)


# --- L2 -----------------------------------------------------------------------------------------

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


# --- Invalidation -------------------------------------------------------------------------------

# Ids whose L2 entry or group message could not be sent (Redis down); resent when it is back.
_pending: set[int] = set()
_pending_lock = threading.Lock()


def _take_pending(user_ids: Iterable[int]) -> list[int]:
    with _pending_lock:
        ids = sorted(_pending.union(user_ids))
        _pending.clear()
    return ids


def _keep_pending(user_ids: Iterable[int], exc: BaseException) -> None:
    with _pending_lock:
        _pending.update(user_ids)
    redis_health.failed(exc)


def _queue_invalidation(pipe: Any, user_ids: Iterable[int]) -> Any:
    """Bump each generation (failing in-flight stores), then drop the value; sync or async pipe."""
    for user_id in user_ids:
        pipe.incr(user_generation_key(user_id))
        pipe.expire(user_generation_key(user_id), GENERATION_TTL)
        pipe.delete(user_cache_key(user_id))
    return pipe


def invalidate_users(user_ids: Iterable[int]) -> None:
    """Forget users everywhere after their change committed. Sync: for on_commit, admin, shell."""
    user_ids = list(user_ids)
    local_cache.invalidate(user_ids)
    ids = _take_pending(user_ids)
    if not ids:
        return
    try:
        connection = get_redis_connection("default")
        _once_more(lambda: _queue_invalidation(connection.pipeline(transaction=True), ids).execute())
        message = {"type": INVALIDATION_MESSAGE, "ids": ids}
        _once_more(lambda: async_to_sync(get_channel_layer().group_send)(INVALIDATION_GROUP, message))
    except (RedisError, OSError) as exc:
        _keep_pending(ids, exc)
    else:
        redis_health.succeeded()


def clear_all_users() -> int:
    """Drop every L2 entry and tell every worker to empty its L1 (operator command)."""
    connection = get_redis_connection("default")
    keys = connection.scan_iter(match=user_cache_key("*"), count=1000)
    ids = [int(key.rsplit(b":", 1)[1]) for key in keys if not key.endswith(b":gen")]
    results = _queue_invalidation(connection.pipeline(), ids).execute()
    removed = sum(results[2::3])  # each id queues incr, expire, delete
    local_cache.clear()
    async_to_sync(get_channel_layer().group_send)(INVALIDATION_GROUP, {"type": INVALIDATION_MESSAGE, "all": True})
    return removed


# --- Ended sessions (logout) ---------------------------------------------------------------------


def revoked_session_key(session_id: str) -> str:
    return f"sidus:session:{session_id}:revoked"


def session_revoke(session_id: str, *, ttl: timedelta) -> None:
    """Remember a logged-out session for as long as one of its access tokens can still be valid."""
    try:
        get_redis_connection("default").set(revoked_session_key(session_id), 1, ex=ttl)
    except (RedisError, OSError) as exc:
        redis_health.failed(exc)  # its refresh token is blacklisted anyway; the access token ages out


def session_is_revoked(session_id: str) -> bool:
    """Fails open while Redis is away: one warning per outage, no 5xx for every logged-in user."""
    if not redis_health.available():
        return False
    try:
        return bool(get_redis_connection("default").exists(revoked_session_key(session_id)))
    except (RedisError, OSError) as exc:
        redis_health.failed(exc)
        return False


# --- The per-worker listener --------------------------------------------------------------------


class InvalidationListener:
    """Joins the group, applies invalidations to L1, and empties L1 whenever Redis breaks.

    While not joined, L1 stays off: a worker that may miss messages must not serve from memory.
    """

    def __init__(self, cache: LocalCache) -> None:
        self.cache = cache
        self.joined = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._channel: str | None = None

    async def start(self, timeout: float = STARTUP_JOIN_TIMEOUT) -> None:
        """Start listening; wait a bounded time for the first join, never fail startup."""
        self.joined = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="user-cache-listener")
        try:
            await asyncio.wait_for(self.joined.wait(), timeout)
        except asyncio.TimeoutError:
            logger.warning("User cache listener not joined yet; L1 stays off until it is")

    async def stop(self) -> None:
        self.cache.disable()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._channel is not None:
            try:
                await asyncio.wait_for(get_channel_layer().group_discard(INVALIDATION_GROUP, self._channel), 1.0)
            except Exception:  # shutting down: the membership expires by itself
                pass

    async def _run(self) -> None:
        layer = get_channel_layer()
        self._channel = await layer.new_channel()
        delay = 0.1
        broken = False
        while True:
            try:
                await self._join(layer)
                if broken:
                    logger.warning("User cache listener re-joined after a Redis outage")
                broken, delay = False, 0.1
                await self._listen(layer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # It may have missed messages, and a restarted Redis has forgotten the group.
                self.joined.clear()
                self.cache.disable()
                if not broken:
                    logger.warning("User cache listener lost Redis, L1 off: %r", exc)
                broken = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _join(self, layer: Any) -> None:
        await layer.group_add(INVALIDATION_GROUP, self._channel)
        await sync_to_async(invalidate_users)(())  # resend what failed while Redis was away
        self.cache.clear()
        self.cache.enable()
        self.joined.set()

    async def _listen(self, layer: Any) -> None:
        rejoin = asyncio.create_task(self._rejoin_periodically(layer))
        try:
            while True:
                message = await layer.receive(self._channel)
                if message.get("all"):
                    self.cache.clear()
                else:
                    self.cache.invalidate(message.get("ids", ()))
        finally:
            rejoin.cancel()

    async def _rejoin_periodically(self, layer: Any) -> None:
        while True:
            await asyncio.sleep(REJOIN_INTERVAL)
            try:
                await layer.group_add(INVALIDATION_GROUP, self._channel)
            except Exception:  # the receive loop sees the same break and recovers
                pass


listener = InvalidationListener(local_cache)


async def lifespan(scope: dict, receive: Callable, send: Callable) -> None:
    """ASGI lifespan: the listener lives as long as the worker."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await listener.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await listener.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


# --- The ASGI hit path --------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    secure: bool


# Media ranges for which DRF's negotiation picks the JSON renderer with its plain content type.
_JSON_RANGES = frozenset({b"application/json", b"application/*", b"*/*"})
_HARMLESS_RANGES = _JSON_RANGES | {b"text/plain"}  # no renderer of ours serves text/plain


@functools.lru_cache(maxsize=256)
def accepts_plain_json(accept: bytes) -> bool:
    """True if Django would answer this Accept header with the JSON bytes L1 holds.

    Anything with parameters (`; indent=4`, `; q=0.9` changes DRF's output) or that could pick
    the browsable API (text/html, text/*) goes to Django.
    """
    if not accept.strip():
        return True
    ranges = {part.strip() for part in accept.lower().split(b",")}
    return all(b";" not in r for r in ranges) and ranges <= _HARMLESS_RANGES and bool(ranges & _JSON_RANGES)


class UserCacheMiddleware:
    """Serves L1 hits of GET /api/v1/users/{id}/ before Django; fills L1 from Django's answers.

    Only plain JSON GET/HEAD requests take this path (no query string, `accepts_plain_json`, an
    allowed Host): everything else, and every miss, goes to Django, whose bytes and headers are
    what L1 stores.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.cache = local_cache
        self._path: re.Pattern[str] | None = None
        self._allowed_hosts: list[str] | None = None

    def _setup(self) -> None:
        prefix, suffix = reverse("user-detail", kwargs={"pk": 123456789}).split("123456789")
        self._path = re.compile(re.escape(prefix) + r"([1-9][0-9]{0,17})" + re.escape(suffix) + r"\Z")
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        self._allowed_hosts = allowed

    def _cacheable_id(self, scope: dict) -> int | None:
        if scope["method"] not in ("GET", "HEAD") or scope.get("query_string"):
            return None
        if self._path is None:
            self._setup()
        match = self._path.match(scope["path"])
        if match is None:
            return None
        host = accept = b""
        for name, value in scope["headers"]:
            if name == b"host":
                if host:
                    return None  # Django joins repeated Host headers and refuses the result: so do we
                host = value
            elif name == b"accept":
                accept = value
        if not accepts_plain_json(accept):
            return None
        domain, _ = split_domain_port(host.decode("latin-1"))
        if not domain or not validate_host(domain, self._allowed_hosts):
            return None
        return int(match.group(1))

    @staticmethod
    def _is_secure(scope: dict) -> bool:
        if scope.get("scheme") == "https":
            return True
        proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
        if proxy_header:
            name = proxy_header[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
            return any(n == name and v.decode("latin-1") == proxy_header[1] for n, v in scope["headers"])
        return False

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        user_id = self._cacheable_id(scope) if scope["type"] == "http" else None
        if user_id is None:
            return await self.app(scope, receive, send)
        secure = self._is_secure(scope)
        cached = self.cache.get(user_id)
        if cached is not None and cached.secure == secure:
            await send({"type": "http.response.start", "status": cached.status, "headers": cached.headers})
            body = b"" if scope["method"] == "HEAD" else cached.body
            await send({"type": "http.response.body", "body": body})
            return
        if scope["method"] != "GET":
            return await self.app(scope, receive, send)
        await self.app({**scope, CAPTURE_SCOPE_KEY: True}, receive, self._capturing_send(send, user_id, secure))

    def _capturing_send(self, send: Callable, user_id: int, secure: bool) -> Callable:
        token = self.cache.token(user_id)
        marker = CACHEABLE_HEADER.lower().encode()
        expected = str(user_id).encode()
        state: dict[str, Any] = {"headers": None, "body": []}

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [(n, v) for n, v in message.get("headers", []) if n.lower() != marker]
                if message["status"] == 200 and (marker, expected) in (
                    (n.lower(), v) for n, v in message.get("headers", [])
                ):
                    state["headers"] = [(n, b"L1" if n.lower() == b"x-cache" else v) for n, v in headers]
                    state["status"] = message["status"]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and state["headers"] is not None:
                state["body"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    response = CachedResponse(state["status"], state["headers"], b"".join(state["body"]), secure)
                    self.cache.set(user_id, response, token)
            await send(message)

        return capture
