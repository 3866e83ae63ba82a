"""Start-up refuses a Redis read timeout that the channel layer's blocking read would outlast."""

import os
import subprocess
import sys

import pytest

from autobot.redisconf import RedisConfigError, channel_layer_config


def test_a_read_timeout_shorter_than_the_blocking_read_is_refused():
    with pytest.raises(RedisConfigError, match="AUTOBOT_REDIS_SOCKET_TIMEOUT"):
        channel_layer_config("redis://127.0.0.1:6379/0", socket_timeout=5)
    with pytest.raises(RedisConfigError, match="socket_timeout in REDIS_URL"):
        channel_layer_config("redis://127.0.0.1:6379/0?socket_timeout=5")


def test_the_server_refuses_to_start_with_such_a_timeout(tmp_path):
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:6379/0", "AUTOBOT_REDIS_SOCKET_TIMEOUT": "5",
           "AUTOBOT_VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    assert "AUTOBOT_REDIS_SOCKET_TIMEOUT=5 is too short" in result.stderr

