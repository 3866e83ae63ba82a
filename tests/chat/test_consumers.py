"""The chat WebSocket through the full ASGI app (origin + auth gate), against the fake LLM."""

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chat import generation
from chat.llm.registry import use_registry
from chat.models import ChatMessage, ChatSession
from tests.chat.conftest import fake_registry

pytestmark = pytest.mark.django_db(transaction=True)


async def make_session(user) -> str:
    session = await ChatSession.objects.acreate(owner=user)
    return str(session.id)


async def receive_until_done(comm, wait=10) -> list[dict]:
    frames = []
    while True:
        frame = await comm.receive_json_from(timeout=wait)
        frames.append(frame)
        if frame["type"] == "done":
            return frames


def tokens_text(frames) -> str:
    """The answer's text as the page builds it: each token goes at its offset (a token carrying the
    whole text from 0, as after the answer's control listener joined its group, replaces it)."""
    text = ""
    for frame in frames:
        if frame["type"] == "token":
            text = text[:min(frame.get("offset", len(text)), len(text))] + frame["data"]
    return text


async def test_it_streams_tokens_then_done(ws_connect, owner, llm):
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    assert comm.connected

    await comm.send_json_to({"type": "message", "content": "hello there", "use_knowledge": True})
    frames = await receive_until_done(comm)

    assert [f["type"] for f in frames] == ["token"] * 3 + ["done"]
    assert tokens_text(frames) == "Echo: hello there"
    done = frames[-1]["message"]
    assert done["status"] == "complete" and done["content"] == "Echo: hello there"
    assert done["html"] == "<p>Echo: hello there</p>\n"
    assert await comm.receive_nothing()
    await comm.disconnect()


async def test_a_malformed_session_id_closes_4404_not_1011(ws_connect, owner, llm):
    comm = await ws_connect("/ws/chat/1/", user=owner)
    assert (await comm.receive_json_from())["code"] == "chat_session_not_found"
    assert (await comm.receive_output())["code"] == 4404
    await comm.disconnect()


async def test_a_session_that_is_not_yours_closes_4404(ws_connect, owner, stranger, llm):
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=stranger)

    assert await comm.receive_json_from() == {"type": "error", "detail": f"chat session {sid} not found",
                                              "code": "chat_session_not_found"}
    assert (await comm.receive_output())["code"] == 4404
    await comm.disconnect()


async def test_bad_frames_get_an_error_and_the_socket_stays_open(ws_connect, owner, llm):
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)

    await comm.send_to(text_data="{not json")
    assert (await comm.receive_json_from())["code"] == "invalid_json"
    await comm.send_json_to({"type": "shout"})
    assert (await comm.receive_json_from())["code"] == "unknown_type"
    await comm.send_json_to({"type": "message", "content": "  "})
    assert (await comm.receive_json_from())["code"] == "empty_message"

    await comm.send_json_to({"type": "message", "content": "still here"})
    assert tokens_text(await receive_until_done(comm)) == "Echo: still here"
    await comm.disconnect()


async def test_an_oversized_message_is_refused_like_rest(ws_connect, owner, llm, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "x" * 11})
    assert (await comm.receive_json_from())["code"] == "message_too_large"
    assert llm.requests == []
    await comm.disconnect()


async def test_reconnecting_mid_answer_shows_the_partial_text_and_continues(ws_connect, owner, llm):
    llm.pause_after = 2
    sid = await make_session(owner)
    first = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await first.send_json_to({"type": "message", "content": "one two three"})
    seen = [await first.receive_json_from(), await first.receive_json_from()]
    assert tokens_text(seen) == "Echo: one"
    await first.disconnect()  # the user reloads the page

    second = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    snapshot = await second.receive_json_from()
    assert snapshot == {"type": "token", "message_id": seen[0]["message_id"], "data": "Echo: one", "offset": 0}

    llm.resume.set()
    rest = await receive_until_done(second)
    assert snapshot["data"] + tokens_text(rest) == "Echo: one two three"
    assert rest[-1]["message"]["content"] == "Echo: one two three"
    await second.disconnect()


async def test_the_answer_is_stored_when_nobody_is_connected(ws_connect, owner, llm):
    llm.pause_after = 1
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "keep going"})
    await comm.receive_json_from()
    await comm.disconnect()  # the client goes away mid-stream

    gen = generation.answers.running(sid)
    llm.resume.set()
    await asyncio.wait_for(gen.finished.wait(), 10)

    reply = await ChatMessage.objects.aget(session_id=sid, role="assistant")
    assert reply.status == "complete" and reply.content == "Echo: keep going"
    assert llm.disconnects == 0


async def test_cancel_stops_the_answer_and_closes_the_upstream_request(ws_connect, owner, llm):
    llm.pause_after = 1
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "a long answer"})
    assert (await comm.receive_json_from())["data"] == "Echo:"

    await comm.send_json_to({"type": "cancel"})
    done = await comm.receive_json_from(timeout=10)

    assert done["type"] == "done" and done["message"]["status"] == "cancelled"
    assert done["message"]["content"] == "Echo:"
    await asyncio.wait_for(llm.client_gone.wait(), 10)
    assert llm.completed == 0
    await comm.disconnect()


async def test_cancel_from_another_socket_works(ws_connect, owner, llm):
    llm.pause_after = 1
    sid = await make_session(owner)
    watcher = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    other = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await watcher.send_json_to({"type": "message", "content": "x y"})
    await watcher.receive_json_from()
    await other.receive_json_from()

    await other.send_json_to({"type": "cancel"})
    assert (await watcher.receive_json_from(timeout=10))["message"]["status"] == "cancelled"
    await watcher.disconnect()
    await other.disconnect()


@pytest.mark.parametrize(
    ("fault", "detail"),
    [
        ({"failures": [500] * 10}, "HTTP 500"),
        ({"malformed_after": 1}, "malformed"),
        ({"disconnect_after": 2}, "mid-answer"),
    ],
)
async def test_provider_faults_become_an_error_then_a_failed_done(ws_connect, owner, llm, fault, detail):
    for name, value in fault.items():
        setattr(llm, name, value)
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "one two three"})

    frames = await receive_until_done(comm)

    error = next(f for f in frames if f["type"] == "error")
    assert error["code"] == "llm_unavailable" and detail in error["detail"]
    assert frames[-1]["message"]["status"] == "failed"
    assert frames[-1]["message"]["content"] == tokens_text(frames)
    await comm.disconnect()


async def test_a_provider_that_is_down_is_reported(ws_connect, owner, llm, unused_tcp_port):
    use_registry(fake_registry(f"http://127.0.0.1:{unused_tcp_port}"))
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "anyone?"})
    frames = await receive_until_done(comm)
    assert frames[0]["code"] == "llm_unavailable" and "unreachable" in frames[0]["detail"]
    await comm.disconnect()


async def test_a_provider_that_goes_silent_times_out(ws_connect, owner, llm):
    use_registry(fake_registry(llm.url, read_timeout=0.3))
    llm.stall_after = 1
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "slow"})
    frames = await receive_until_done(comm)
    assert [f["type"] for f in frames] == ["token", "error", "done"]
    assert "stopped responding" in frames[1]["detail"]
    await comm.disconnect()


async def test_a_slow_provider_still_streams_every_token(ws_connect, owner, llm):
    llm.delay = 0.05
    sid = await make_session(owner)
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "a b c d"})
    frames = await receive_until_done(comm)
    assert [f["type"] for f in frames].count("token") == 5
    await comm.disconnect()


async def test_fifty_concurrent_streams(ws_connect, owner, llm):
    llm.delay = 0.01
    sids = [await make_session(owner) for _ in range(50)]
    comms = [await ws_connect(f"/ws/chat/{sid}/", user=owner) for sid in sids]

    for n, comm in enumerate(comms):
        await comm.send_json_to({"type": "message", "content": f"question {n}"})
    results = await asyncio.gather(*(receive_until_done(comm, wait=60) for comm in comms))

    assert [r[-1]["message"]["content"] for r in results] == [f"Echo: question {n}" for n in range(50)]
    assert all(tokens_text(r) == r[-1]["message"]["content"] for r in results)
    assert llm.completed == 50 and llm.peak_streaming > 1
    statuses = await sync_to_async(list)(ChatMessage.objects.filter(role="assistant").values_list("status", flat=True))
    assert statuses == ["complete"] * 50
    for comm in comms:
        await comm.disconnect()


async def test_two_sockets_posting_at_once_start_one_answer(ws_connect, owner, llm):
    # The answer lasts long enough for the other post to arrive while it runs: an instant one can
    # be stored before the second is checked, and the second is then rightly answered after it.
    llm.delay = 0.1
    sid = await make_session(owner)
    first = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    second = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await asyncio.gather(first.send_json_to({"type": "message", "content": "one"}),
                         second.send_json_to({"type": "message", "content": "two"}))

    frames = [*await receive_until_done(first), *await receive_until_done(second)]
    refusals = [f for f in frames if f["type"] == "error"]
    assert [f["code"] for f in refusals] == ["generation_running"]
    assert await ChatMessage.objects.filter(session_id=sid, role="assistant").acount() == 1
    assert len(llm.requests) == 1
    await first.disconnect()
    await second.disconnect()


async def test_a_model_that_is_not_a_string_is_invalid_input_and_the_socket_stays(ws_connect, owner, llm):
    from chat import services

    session = await services.session_create(user=owner)
    comm = await ws_connect(f"/ws/chat/{session.id}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "hi", "model": ["x"]})
    error = await comm.receive_json_from(timeout=10)
    assert error["type"] == "error" and error["code"] == "invalid_input" and "model" in error["detail"]
    await comm.send_json_to({"type": "message", "content": "hi"})  # still open, still answering
    seen = [await comm.receive_json_from(timeout=10) for _ in range(3)]
    assert all(frame["type"] != "error" for frame in seen)
    await comm.disconnect()
