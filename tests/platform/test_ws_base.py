"""One WebSocket base (autobot/ws.py JsonConsumer): every fault of a frame gets the same code on
every socket — terminal, chat, crawl progress, external agents and the agents page's feed —
through the full ASGI app (origin and auth gate included)."""

import json
import logging
import uuid
from datetime import UTC, datetime

import pytest

from agents.consumers import AgentConsumer, AgentFeedConsumer
from chat.consumers import ChatConsumer
from chat.models import ChatSession
from knowledge.consumers import CrawlProgressConsumer
from knowledge.models import CrawlJob
from terminal.consumers import TerminalConsumer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

CONSUMERS = {"terminal": TerminalConsumer, "chat": ChatConsumer, "crawl": CrawlProgressConsumer,
             "agent": AgentConsumer, "feed": AgentFeedConsumer}
TYPED = ["terminal", "chat", "crawl", "feed"]  # frames are {"type": …}; the agent's are protocol messages
INTERNAL = {"type": "error", "code": "internal_error", "detail": "internal error: it has been logged"}


@pytest.fixture(autouse=True)
async def _end_live_sessions():
    yield
    from terminal.services import sessions_shutdown

    await sessions_shutdown()


@pytest.fixture
def open_socket(ws_connect, owner):
    """await open_socket(name) → a connected communicator, past the server's first frame if it
    sends one (the session, the crawl's progress, the registry)."""

    async def connect(name, *, greeted=True):
        if name == "terminal":
            from terminal import services
            from tests.terminal.conftest import agrant

            user = await agrant(owner)
            session = await services.session_open(user=user)
            comm = await ws_connect(f"/ws/terminal/{session.pk}/", user=user)
        elif name == "chat":
            session = await ChatSession.objects.acreate(owner=owner)
            comm = await ws_connect(f"/ws/chat/{session.pk}/", user=owner)
        elif name == "crawl":
            job = await CrawlJob.objects.acreate(owner=owner, url="https://example.org/", status="done")
            comm = await ws_connect(f"/ws/knowledge/crawls/{job.pk}/", user=owner)
        elif name == "agent":
            comm = await ws_connect("/ws/agents/?agent_id=echo", user=owner, origin=None)
        else:
            comm = await ws_connect("/ws/agents/feed/", user=owner)
        assert comm.connected
        if greeted and name in ("terminal", "crawl", "feed"):
            assert (await comm.receive_json_from(timeout=10))["type"] in ("session", "progress", "agents")
        return comm

    return connect


async def reply(comm) -> dict:
    """The next error frame (an agent's ERROR message as the same dict) or {"close": code},
    past the frames a socket sends on its own (session, output, progress, the registry …)."""
    while True:
        out = await comm.receive_output(timeout=10)
        if out["type"] == "websocket.close":
            return {"close": out.get("code")}
        frame = json.loads(out["text"])
        if "header" in frame:  # an agent protocol message
            if frame["header"]["message_type"] == "ERROR":
                return {"type": "error", **frame["payload"]["data"]}
        elif frame.get("type") == "error":
            return frame


async def code_of(comm) -> str:
    return (await reply(comm))["code"]


async def still_open(comm) -> None:
    """The socket still reads frames: another bad one gets its error frame."""
    await comm.send_to(text_data="[]")
    assert await code_of(comm) == "invalid_frame"


def padded(limit: int) -> str:
    """A JSON object frame of fewer characters than `limit` but more UTF-8 bytes."""
    text = json.dumps({"type": "ping", "pad": "é" * (limit // 2 + 16)}, ensure_ascii=False)
    assert len(text) < limit < len(text.encode())
    return text


@pytest.mark.parametrize("name", CONSUMERS)
async def test_a_binary_frame_is_binary_frame(open_socket, name):
    comm = await open_socket(name)
    await comm.send_to(bytes_data=b"\x00\x01binary")
    error = await reply(comm)
    assert error["code"] == "binary_frame" and error["detail"]
    await still_open(comm)
    await comm.disconnect()


@pytest.mark.parametrize("name", CONSUMERS)
async def test_a_frame_over_the_limit_in_utf8_bytes_is_frame_too_large(open_socket, name):
    comm = await open_socket(name)
    await comm.send_to(text_data=padded(CONSUMERS[name]().max_frame_bytes))
    assert await code_of(comm) == "frame_too_large"
    await still_open(comm)
    await comm.disconnect()


@pytest.mark.parametrize("name", ["crawl", "feed"])
async def test_a_frame_of_exactly_the_limit_is_read(open_socket, name):
    comm = await open_socket(name)
    limit = CONSUMERS[name]().max_frame_bytes
    frame = json.dumps({"type": "ping", "pad": ""})
    await comm.send_to(text_data=frame[:-2] + "x" * (limit - len(frame)) + '"}')
    while (answer := await comm.receive_json_from(timeout=5))["type"] != "pong":
        assert answer["type"] != "error", answer
    await comm.disconnect()


@pytest.mark.parametrize("raw", ["{not json", "", "[" * 100 + "]" * 100], ids=["malformed", "empty", "too-deep"])
@pytest.mark.parametrize("name", CONSUMERS)
async def test_text_that_is_not_json_is_invalid_json(open_socket, name, raw):
    comm = await open_socket(name)
    await comm.send_input({"type": "websocket.receive", "text": raw})  # send_to refuses an empty text
    assert await code_of(comm) == "invalid_json"
    await still_open(comm)
    await comm.disconnect()


@pytest.mark.parametrize("text", ["[{" * 300, 'quoted \\"' + "[" * 300 + '\\" still text'],
                         ids=["brackets", "escaped-quotes"])
@pytest.mark.parametrize("name", TYPED)
async def test_brackets_inside_strings_are_not_nesting(open_socket, name, text):
    comm = await open_socket(name)
    await comm.send_to(text_data=json.dumps({"type": "no_such_type", "text": text}))
    assert await code_of(comm) == "unknown_type"  # read as JSON: its brackets were only text
    deeper = json.dumps({"type": "no_such_type", "text": text})[:-1] + ', "deep": ' + "[" * 70 + "]" * 70 + "}"
    await comm.send_to(text_data=deeper)  # the same text, with 71 levels outside the string
    assert await code_of(comm) == "invalid_json"
    await comm.disconnect()


@pytest.mark.parametrize("raw", ["[1, 2]", '"ping"', "null", "42"])
@pytest.mark.parametrize("name", CONSUMERS)
async def test_json_that_is_not_an_object_is_invalid_frame(open_socket, name, raw):
    comm = await open_socket(name)
    await comm.send_to(text_data=raw)
    assert await code_of(comm) == "invalid_frame"
    await still_open(comm)
    await comm.disconnect()


@pytest.mark.parametrize("frame", [{"data": "x"}, {"type": 7}, {"type": None}, {"type": ["ping"]}],
                         ids=["missing", "number", "null", "list"])
@pytest.mark.parametrize("name", TYPED)
async def test_an_object_without_a_string_type_is_invalid_frame(open_socket, name, frame):
    comm = await open_socket(name)
    await comm.send_json_to(frame)
    assert await code_of(comm) == "invalid_frame"
    await still_open(comm)
    await comm.disconnect()


@pytest.mark.parametrize(("name", "accepts"), [
    ("terminal", ["input", "resize", "ping", "join", "leave"]),
    ("chat", ["message", "cancel", "approve", "deny", "pause", "resume", "stop"]),
    ("crawl", ["cancel", "ping"]),
    ("feed", ["ping"]),
])
@pytest.mark.parametrize("kind", ["launch", "Ping", "__class__", "_error", "x" * 500])
async def test_an_unknown_type_is_unknown_type_and_lists_the_types_accepted(open_socket, name, accepts, kind):
    comm = await open_socket(name)
    await comm.send_json_to({"type": kind})
    error = await reply(comm)
    assert error["code"] == "unknown_type" and error["accepts"] == accepts
    assert accepts[-1] in error["detail"] and len(error["detail"]) < 200
    await still_open(comm)
    await comm.disconnect()


async def test_the_agent_socket_says_which_message_types_exist(open_socket):
    """An agent's frame names its type in header.message_type, a field of the protocol: a wrong one
    is that field's fault (invalid_message), naming the types that exist."""
    comm = await open_socket("agent")
    await comm.send_json_to({"header": {"message_type": "SHOUT", "sender_id": "echo"}, "payload": {"action": "x"}})
    error = await reply(comm)
    assert error["code"] == "invalid_message" and "REQUEST, RESPONSE, BROADCAST" in error["detail"]
    await comm.disconnect()


def _heartbeat() -> dict:
    return {"header": {"message_id": str(uuid.uuid4()), "message_type": "HEARTBEAT", "sender_id": "echo",
                       "timestamp": datetime.now(UTC).isoformat()}, "payload": {"action": "heartbeat"}}


@pytest.mark.parametrize("name", ["terminal", "chat", "crawl", "agent"])  # the feed's one handler cannot fail
async def test_an_app_error_from_a_handler_is_an_error_frame_like_rest(open_socket, name):
    comm = await open_socket(name)
    if name == "terminal":
        await comm.send_json_to({"type": "input", "data": 42})
        expected = {"type": "error", "detail": "input needs a string 'data'", "code": "invalid_input"}
    elif name == "chat":
        await comm.send_json_to({"type": "message", "content": "  "})
        expected = {"type": "error", "code": "empty_message"}
    elif name == "crawl":
        job = await CrawlJob.objects.aget()
        expected = {"type": "error", "detail": f"crawl {job.pk} not found", "code": "crawl_not_found"}
        await job.adelete()
        await comm.send_json_to({"type": "cancel"})
    else:
        await comm.send_json_to(_heartbeat())
        expected = {"type": "error", "code": "not_registered"}
    error = await reply(comm)
    assert set(error) == {"type", "code", "detail"} and error["detail"]
    assert error == {**error, **expected}
    await still_open(comm)
    await comm.disconnect()


async def test_a_fatal_app_error_closes_with_its_code(open_socket, monkeypatch):
    from autobot.errors import Forbidden
    from chat import services

    async def refused(**kwargs):
        raise Forbidden("you may not cancel here", code="cancel_forbidden", fatal=True)

    monkeypatch.setattr(services, "generation_cancel", refused)
    comm = await open_socket("chat")
    await comm.send_json_to({"type": "cancel"})
    assert await reply(comm) == {"type": "error", "detail": "you may not cancel here", "code": "cancel_forbidden"}
    assert await reply(comm) == {"close": 4403}
    await comm.disconnect()


def _break(name, monkeypatch):
    """Make the service behind one frame (or the connect) fail as a bug would; returns the frame."""

    async def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    if name == "terminal":
        from terminal.services.watch import Attachment

        monkeypatch.setattr(Attachment, "resize", boom)
        return {"type": "resize", "cols": 100, "rows": 30}
    if name == "chat":
        from chat import services

        monkeypatch.setattr(services, "generation_cancel", boom)
        return {"type": "cancel"}
    if name == "crawl":
        from knowledge import services

        monkeypatch.setattr(services, "crawl_cancel", boom)
        return {"type": "cancel"}
    from agents import services

    if name == "agent":
        monkeypatch.setattr(services, "agent_register", boom)
        hello = _heartbeat()
        hello["header"]["message_type"] = "NOTIFICATION"
        hello["payload"] = {"action": "agent.register", "data": {"name": "echo", "capabilities": ["echo"]}}
        return hello
    monkeypatch.setattr(services, "agent_list", boom)  # the feed: its connect fails
    return None


@pytest.mark.parametrize("name", CONSUMERS)
async def test_an_unexpected_exception_is_internal_error_then_close_1011(open_socket, name, monkeypatch, caplog):
    frame = _break(name, monkeypatch)
    with caplog.at_level(logging.ERROR, logger="autobot.ws"):
        comm = await open_socket(name, greeted=False)
        if frame is not None:
            await comm.send_json_to(frame)
        assert await reply(comm) == INTERNAL
        assert await reply(comm) == {"close": 1011}
    logged = [r for r in caplog.records if r.name == "autobot.ws"]
    assert logged and logged[0].exc_info and "a bug" in str(logged[0].exc_info[1])
    assert CONSUMERS[name].__name__ in logged[0].getMessage()
    await comm.disconnect()
