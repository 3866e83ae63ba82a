"""autobot/workers.py: whether this process is the whole server."""

from autobot.workers import single_process


def test_the_in_memory_layer_means_one_process_and_redis_means_several(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert single_process()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]}}}
    assert not single_process()
