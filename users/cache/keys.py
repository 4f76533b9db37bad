"""Every Redis key and Channels name of the user cache, in one place."""
INVALIDATION_GROUP = "sidus.users.invalidate"
INVALIDATION_MESSAGE = "users.invalidate"
# Set by the view on a cacheable public representation, only when the ASGI layer asked for it
# (CAPTURE_SCOPE_KEY in the scope); the layer strips it, so no client ever sees it.
CACHEABLE_HEADER = "X-Sidus-Cacheable"
CAPTURE_SCOPE_KEY = "sidus.capture"
GENERATION_TTL = 7 * 86400


def user_cache_key(user_id: int) -> str:
    return f"sidus:user:{user_id}"


def user_generation_key(user_id: int) -> str:
    return f"sidus:user:{user_id}:gen"


def revoked_session_key(session_id: str) -> str:
    return f"sidus:session:{session_id}:revoked"
