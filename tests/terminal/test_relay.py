"""The terminal relay over the real Redis channel layer, both of its sides in this process: the
host side reads the session's channel as it does on the worker that owns the PTY, and the calls
are the ones another worker makes."""

import asyncio

import pytest

from autobot.models import AuditEvent
from autobot.supervise import cancel
from terminal import services
from terminal.services import relay
from terminal.services.watch import watchers
from tests.conftest import use_redis_layer
from tests.terminal.conftest import agrant

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

@pytest.fixture(autouse=True)
def _redis_layer(settings):
    use_redis_layer(settings, "relay")


@pytest.fixture
async def session(terminal_user):
    return await services.session_open(user=terminal_user)


async def test_a_reader_cancelled_again_and_again_still_detaches_every_remote_socket(session, staff):
    boss = await agrant(staff)
    live = services.live_session(session.pk)
    remotes = []
    for _ in range(3):  # staff watching from another worker
        remote = relay.RemoteAttachment(session, lambda _event: None)
        await remote.start(user=boss, mode=None, client_ip=None)
        remotes.append(remote)
    assert len(watchers(live)) == 3
    reader = next(t for t in live.endless if t.get_name() == f"terminal {session.pk} relay")

    # What the session's end does (supervise.cancel insists), hitting every step of the detach.
    cancel(reader)
    while not reader.done():
        reader.cancel()
        await asyncio.sleep(0)

    assert watchers(live) == [] and live.attached == 0
    assert live.grace_ends is not None  # nobody attached any more: the reconnect grace runs
    unwatched = AuditEvent.objects.filter(target_id=str(session.pk), action="terminal.session_unwatch")
    assert await unwatched.acount() == 3
    for remote in remotes:
        await remote.detach()
