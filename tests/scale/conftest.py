"""Scale-out tests: the chat's fake LLM and the terminal's fixtures, reused; a Redis of the test's own."""

import asyncio
import uuid

import pytest
from channels.layers import channel_layers

from autobot import layerwatch
from autobot.redisconf import channel_layer_config
from autobot.testbed import RedisServer
from tests.chat.conftest import fake_llm, llm  # noqa: F401 - fixtures
from tests.conftest import app_server
from tests.terminal.conftest import _terminal_settings, grant_terminal, terminal_user  # noqa: F401 - fixtures


@pytest.fixture
async def own_redis(settings):
    """A redis-server of the test's own on another loopback port, as the channel layer and
    REDIS_URL: the test may stop, restart or kill it (never the shared one)."""
    from channels.layers import channel_layers

    from agents.services import bus_shutdown

    server = await asyncio.to_thread(RedisServer().start)
    settings.REDIS_URL = server.url
    settings.CHANNEL_LAYERS = {"default": channel_layer_config(server.url, prefix=f"rs{uuid.uuid4().hex[:6]}")}
    settings.HEALTH_TIMEOUT_SECONDS = 1.0
    channel_layers.backends.clear()
    yield server
    await layerwatch.stop()
    await asyncio.to_thread(server.stop)
    await bus_shutdown()
    channel_layers.backends.clear()


@pytest.fixture
async def other_worker(own_redis, settings, tmp_path):
    """Another worker (uvicorn) on the test's Redis and database. Both use the layer's default
    prefix, so they share its groups."""
    settings.CHANNEL_LAYERS = {"default": channel_layer_config(own_redis.url)}
    channel_layers.backends.clear()
    server = await asyncio.to_thread(app_server(tmp_path / "var", env={"REDIS_URL": own_redis.url}).start)
    yield server
    await asyncio.to_thread(server.stop)


@pytest.fixture(autouse=True)
def _cluster_workers_back(request):
    """Every worker of a module's cluster runs again after each test: a test that killed one and
    failed before starting it again would otherwise leave the module's next tests a dead upstream,
    and one failure would show as several."""
    yield
    if "cluster" not in request.fixturenames:
        return
    cluster = request.getfixturevalue("cluster")
    for index, worker in enumerate(getattr(cluster, "workers", ())):
        if not worker.running():
            cluster.restart_worker(index)
