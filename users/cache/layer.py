"""The channel layer that carries the invalidation group: channels-redis's, with its one unawaited
task made to fail quietly."""
import logging

from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer
from redis.exceptions import RedisError

logger = logging.getLogger("users.cache")


class RedisChannelLayer(ChannelsRedisLayer):
    async def _clean_receive_backup(self, index: int, channel: str) -> None:
        """channels-redis drops each received message's copy from its backup queue in a task
        nobody awaits: when Redis breaks at that instant, asyncio would log the task's traceback as
        an error. The copy left behind is only received again (invalidations are idempotent), and
        the listener logs the outage once, so this becomes a debug line."""
        try:
            await super()._clean_receive_backup(index, channel)
        except (RedisError, OSError) as exc:
            logger.debug("A received invalidation stays in the channel's backup queue: %r", exc)
