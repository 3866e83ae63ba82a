"""autobot/workers.py: whether this process is the whole server."""

import os

from autobot.workers import single_process


def test_the_in_memory_layer_means_one_process_and_redis_means_several(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert single_process()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                           "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]}}}
    assert not single_process()


def test_a_worker_that_died_is_gone_before_its_parent_reaps_it():
    """`wait_gone` returns when the process exits; until its parent reaps it (uvicorn's supervisor,
    the test harness), it stays a zombie with its /proc entry. Found alive then, an answer or a
    terminal whose worker died was not marked interrupted or lost (the watcher checks once)."""
    import asyncio
    import signal
    import subprocess

    from autobot.workers import WORKER_ID, wait_gone, worker_gone

    child = subprocess.Popen(["sleep", "60"])
    worker = f"{WORKER_ID.rpartition(':')[0]}:{child.pid}"
    try:
        assert not worker_gone(worker)
        os.kill(child.pid, signal.SIGKILL)  # not child.kill(): Popen would not be asked to reap it
        asyncio.run(asyncio.wait_for(wait_gone(worker), 30))
        assert os.path.exists(f"/proc/{child.pid}")  # a zombie: not reaped yet
        assert worker_gone(worker)
    finally:
        child.kill()
        child.wait()
