"""Every Redis key and Channels name of the user cache, in one place."""
INVALIDATION_GROUP = "sidus.users.invalidate"
INVALIDATION_MESSAGE = "users.invalidate"
INVALIDATION_COUNT = "sidus:users:invalidations"  # in the channel layer's Redis: the numbers of its messages
GENERATION_TTL = 7 * 86400


def user_cache_key(user_id: int) -> str:
    return f"sidus:user:{user_id}"


def user_generation_key(user_id: int) -> str:
    return f"sidus:user:{user_id}:gen"
