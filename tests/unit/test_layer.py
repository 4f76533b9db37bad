"""The channel layer of the invalidation group, quiet when Redis breaks."""
import logging

import pytest
import redis
from django.conf import settings


async def test_a_backup_cleaner_that_loses_redis_fails_quietly(caplog):
    # channels-redis runs it in a task nobody awaits, after each received message: an error there
    # would be logged as an unretrieved task's traceback (a CI run saw one after a Redis restart).
    from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer

    from tests.servers import free_port
    from users.cache.layer import RedisChannelLayer

    gone = {"hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0", "socket_connect_timeout": 0.2}]}
    with pytest.raises(redis.ConnectionError):  # what channels-redis's own does
        await ChannelsRedisLayer(**gone)._clean_receive_backup(0, "specific.test!")
    with caplog.at_level(logging.DEBUG, logger="users.cache"):
        await RedisChannelLayer(**gone)._clean_receive_backup(0, "specific.test!")
    assert [r.levelname for r in caplog.records] == ["DEBUG"]
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "users.cache.layer.RedisChannelLayer"
