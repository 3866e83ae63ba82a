import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connections


@pytest.fixture(autouse=True)
async def _agents_runtime():
    """Each test's event loop gets its own bus and built-ins; stop them and empty the
    in-memory layer afterwards so nothing leaks into the next test's loop."""
    yield
    from agents import services

    await services.bus_shutdown()
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()
    # The async ORM ran in asgiref's worker thread: close its connection there, or PostgreSQL
    # refuses to drop the test database at the end ("being accessed by other users").
    await sync_to_async(connections.close_all)()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def layer(request, settings):
    """The default in-memory layer, or the project's Redis layer on the test Redis (its channels
    prefixed with the test module's name)."""
    from channels.layers import channel_layers

    from agents import services
    from tests.conftest import use_redis_layer

    if request.param == "redis":
        use_redis_layer(settings, request.module.__name__.rsplit(".", 1)[-1])
    yield request.param
    if request.param == "redis":
        await services.bus_shutdown()
        await get_channel_layer().flush()
        channel_layers.backends.clear()
