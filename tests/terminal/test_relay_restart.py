"""A terminal reached from another worker, across a restart of its Redis (terminal/services/relay.py).

Both sides of the relay run in this process on a Redis of the test's own, which the test stops and
starts again (empty: what was queued in it is gone). What the user would notice: input typed after
the restart shows its output, or the socket ends at once with a reason (the page reconnects and
the new socket works). Before, the remote side's reader and pinger ended on the first connection
error, unnoticed: the socket stayed open and deaf until the host detached it 20 s later."""

import asyncio
import uuid

import pytest

from autobot import supervise
from autobot.errors import AppError
from autobot.redisconf import channel_layer_config
from autobot.testbed import RedisServer
from terminal import services
from terminal.services import relay

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

# Well below LOST_SECONDS, after which the host detached a deaf socket: the user noticed then.
NOTICED_WITHIN = relay.LOST_SECONDS / 2


@pytest.fixture
async def own_redis(settings):
    from channels.layers import channel_layers

    server = await asyncio.to_thread(RedisServer().start)
    settings.REDIS_URL = server.url
    settings.CHANNEL_LAYERS = {"default": channel_layer_config(server.url, prefix=f"rr{uuid.uuid4().hex[:6]}")}
    channel_layers.backends.clear()
    yield server
    await services.sessions_shutdown()  # while their Redis runs
    await asyncio.to_thread(server.stop)
    channel_layers.backends.clear()


async def attached(session, user) -> tuple[relay.RemoteAttachment, list[dict]]:
    events: list[dict] = []
    remote = relay.RemoteAttachment(session, events.append)
    await remote.start(user=user, mode=None, client_ip=None)
    return remote, events


async def shows(remote: relay.RemoteAttachment, text: str) -> bool:
    """Read the socket's output until ``text`` (True) or its end (False: the socket closes)."""
    seen = ""
    while text not in seen:
        chunk = await remote.read()
        if chunk is None:
            return False
        seen += chunk
    return True


async def restart_once_noticed(server: RedisServer, reader: str) -> None:
    """Stop Redis, wait until ``reader`` (supervised) has failed on it, start it again."""
    await asyncio.to_thread(server.stop)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while reader not in supervise.not_running():
        assert loop.time() < deadline, f"{reader} did not notice Redis stopping"
        await asyncio.sleep(0.1)
    await asyncio.to_thread(server.start)


async def test_a_relayed_terminal_works_after_its_redis_restarts_or_ends_the_socket_at_once(
        own_redis, terminal_user):
    session = await services.session_open(user=terminal_user)
    remote, events = await attached(session, terminal_user)
    await remote.input("echo before-$((40+2))\r")
    assert await shows(remote, "before-42")

    await restart_once_noticed(own_redis, f"terminal-{session.pk}-relay")

    async def typed_after_restart() -> bool:
        try:
            await remote.input("echo after-$((40+2))\r")
        except AppError:
            pass  # told at once: the consumer sends the error frame
        return await shows(remote, "after-42")

    async with asyncio.timeout(NOTICED_WITHIN):
        worked = await typed_after_restart()
    if not worked:  # the socket ended: with a reason, and not as if the shell had exited
        with pytest.raises(AppError) as why:
            await remote.exit_code()
        assert why.value.code == "session_unreachable"
        await remote.detach()
        remote, events = await attached(session, terminal_user)  # the page reconnects
        await remote.input("echo again-$((40+2))\r")
        async with asyncio.timeout(NOTICED_WITHIN):
            assert await shows(remote, "again-42")
    await remote.detach()
