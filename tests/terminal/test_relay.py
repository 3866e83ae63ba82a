"""The terminal relay over the real Redis channel layer, both of its sides in this process: the
host side reads the session's channel as it does on the worker that owns the PTY, and the calls
are the ones another worker makes (tests/scale/test_operator_relay.py runs two real workers)."""

import asyncio
from pathlib import Path

import pytest

from autobot.errors import AppError
from autobot.models import AuditEvent
from autobot.supervise import cancel
from files.services import area_root
from terminal import services
from terminal.models import CommandRecord
from terminal.services import relay
from terminal.services.watch import watchers
from tests.conftest import use_redis_layer
from tests.terminal.conftest import agrant

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

HARMLESS_DANGER = "mkfs.ext4 /dev/autobot-test-none"


@pytest.fixture(autouse=True)
def _redis_layer(settings):
    use_redis_layer(settings, "relay")


@pytest.fixture
async def session(terminal_user):
    return await services.session_open(user=terminal_user)


async def typed(session, command, *, seconds=20.0, on_output=None):
    return await relay.type_remote(session, command=command, actor="operator", correlation_id="turn-1",
                                   timeout=seconds, on_output=on_output)


async def test_a_line_typed_through_the_relay_runs_on_the_host_and_its_output_comes_back(session):
    seen = []

    async def output(text):
        seen.append(text)

    ran = await typed(session, "echo relayed-$((6*7))", on_output=output)

    assert ran["exit_code"] == 0 and not ran["blocked"] and not ran["timed_out"]
    assert ran["output"].splitlines()[-1] == "relayed-42"  # (the shell's first prompt may come before)
    assert "relayed-42" in "".join(seen)  # live, as it came
    record = await CommandRecord.objects.aget(pk=ran["record_id"])
    assert record.command == "echo relayed-$((6*7))"
    assert record.actor == "operator" and record.correlation_id == "turn-1" and not record.blocked


async def test_a_line_the_terminal_blocks_is_blocked_through_the_relay_too(session):
    ran = await typed(session, HARMLESS_DANGER)

    assert ran["blocked"] and ran["risk"] == "DANGEROUS" and "RESTRICTED" in ran["reason"]
    record = await CommandRecord.objects.aget(pk=ran["record_id"])
    assert record.blocked and record.actor == "operator"


async def running(session, user):
    """Type a line that prints, then waits (the program in the foreground); returns once it runs."""
    root, _ = await area_root(user=user)
    await asyncio.to_thread(Path(root, "started.txt").write_text, "started-2\n")
    started = asyncio.Event()
    seen = []

    async def output(text):
        seen.append(text)
        if "started-2" in "".join(seen):
            started.set()

    task = asyncio.create_task(typed(session, "tail -f started.txt", seconds=60, on_output=output))
    await started.wait()
    return task


async def test_stopping_the_caller_kills_the_relayed_line_and_the_shell_takes_the_next(session, terminal_user):
    typing = await running(session, terminal_user)
    typing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await typing

    # Killed on the host: the shell is at its prompt again and runs the next line at once.
    ran = await typed(session, "echo after-$((1+1))")
    assert ran["output"].splitlines()[-1] == "after-2" and ran["exit_code"] == 0 and not ran["timed_out"]


async def test_stopping_the_caller_stops_the_rest_of_the_relayed_line_too(session, terminal_user):
    root, _ = await area_root(user=terminal_user)
    started, seen = asyncio.Event(), []

    async def output(text):
        seen.append(text)
        if "started-2" in "".join(seen):
            started.set()

    typing = asyncio.create_task(typed(session, "echo started-$((1+1)); sleep 30; echo after-stop > stopped.txt",
                                       seconds=60, on_output=output))
    await started.wait()
    typing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await typing

    ran = await typed(session, "echo after-$((1+1))")
    assert ran["output"].splitlines()[-1] == "after-2" and ran["exit_code"] == 0
    assert not await asyncio.to_thread(Path(root, "stopped.txt").exists)


async def test_a_second_line_while_one_is_typed_is_refused_as_busy(session, terminal_user):
    first = await running(session, terminal_user)
    try:
        with pytest.raises(AppError) as refused:
            await typed(session, "echo second")
        assert getattr(refused.value, "code", None) == "terminal_busy"
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)


async def test_a_closed_session_answers_session_ended(session, terminal_user):
    await services.session_close(user=terminal_user, session_id=session.pk)
    with pytest.raises(AppError) as ended:
        await typed(session, "echo late")
    assert getattr(ended.value, "code", None) == "session_ended"


async def test_reachable_while_live_for_its_owner_only(session, terminal_user, colleague):
    assert await services.session_reachable(user=terminal_user, session_id=session.pk)
    assert not await services.session_reachable(user=await agrant(colleague), session_id=session.pk)
    assert not await services.session_reachable(user=terminal_user, session_id="not-a-session")
    await services.session_close(user=terminal_user, session_id=session.pk)
    assert not await services.session_reachable(user=terminal_user, session_id=session.pk)


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


# A call that fails on the host with something other than an AppError (a database error, a
# malformed call) is answered at once; the caller used to wait out CALL_TIMEOUT (a typed line:
# its timeout and CALL_TIMEOUT more) and then report the host lost. The bound is well below that.
ANSWERED_WITHIN = relay.CALL_TIMEOUT * 0.8


async def test_a_call_that_fails_on_the_host_is_answered_at_once_with_the_error(session):
    # Input "typed" by a user who does not exist: the host's database lookup raises DoesNotExist.
    with pytest.raises(AppError) as failed:
        async with asyncio.timeout(ANSWERED_WITHIN):
            await relay.call(session, "input", text="echo nobody\n", user_id=2**31 - 1)
    assert (failed.value.code, failed.value.status) == ("terminal_host_error", 502)
    assert "input" in failed.value.detail and "DoesNotExist" not in failed.value.detail

    # The host's reader goes on: the next call is answered as usual.
    assert (await relay.call(session, "signal", signal="SIGINT"))["process_group"] is None


async def test_a_typed_line_that_fails_on_the_host_is_answered_at_once_with_the_error(session):
    # A malformed call (no text to type) fails inside the host's type_live with a TypeError.
    with pytest.raises(AppError) as failed:
        async with asyncio.timeout(ANSWERED_WITHIN):
            await typed(session, None, seconds=60)
    assert (failed.value.code, failed.value.status) == ("terminal_host_error", 502)

    # The line slot is free again and the shell types the next line.
    ran = await typed(session, "echo still-$((2+2))")
    assert ran["output"].splitlines()[-1] == "still-4" and ran["exit_code"] == 0


async def test_a_socket_its_host_detached_ends_with_a_reason_at_its_next_ping(session, terminal_user):
    # What the host does when a send to the socket fails (Redis away): it detaches it. The socket's
    # worker may not have noticed anything; its next ping is answered "detached" and it ends, so the
    # page reconnects instead of waiting, deaf, for output that will never come.
    remote = relay.RemoteAttachment(session, lambda _event: None)
    await remote.start(user=terminal_user, mode=None, client_ip=None)
    await relay._remotes[session.pk][remote.reply].close()

    async with asyncio.timeout(relay.PING_SECONDS * 2):
        while await remote.read() is not None:  # the prompt, sent before
            pass
    with pytest.raises(AppError) as ended:
        await remote.exit_code()
    assert (ended.value.code, ended.value.status) == ("session_unreachable", 503)
    await remote.detach()
