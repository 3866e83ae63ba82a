"""The operator with two real workers on PostgreSQL + Redis: its terminal runs on one worker, and a
chat turn served by the other types into it (terminal/services/relay.py, op "type").

The model is the fake LLM on loopback (Ollama's wire format) asked to run the command the user
wrote; each worker is reached directly, so which one serves what is certain.
"""

import json
import re
import secrets

import pytest
from asgiref.sync import sync_to_async

from chat.operator.policy import policy_set
from terminal.models import CommandRecord, TerminalSession
from tests.chat.fake_llm import FakeLLMThread
from tests.chat.test_operator import call
from tests.scale.cluster import running_cluster, worker_id
from tests.scale.test_nginx import Visitor, output_has, read_until
from tests.terminal.conftest import _grant

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True),
              pytest.mark.timeout(180)]

HARMLESS_DANGER = "mkfs.ext4 /dev/autobot-test-none"


def run_what_the_user_wrote(body: dict) -> dict:
    messages = body.get("messages") or []
    if messages and messages[-1].get("role") == "tool":
        return {"text": "Done."}
    asked = next(m["content"] for m in reversed(messages) if m.get("role") == "user")
    return {"tool_calls": [call("terminal_run", {"command": re.search(r"RUN: (.*)$", asked).group(1)}, "run")]}


@pytest.fixture(scope="module")
def model():
    with FakeLLMThread() as fake:
        fake.script = run_what_the_user_wrote
        yield fake


@pytest.fixture(scope="module")
def cluster(model, django_db_setup, django_db_blocker, tmp_path_factory):
    extra = {"AUTOBOT_LLM_PROVIDER": "ollama", "AUTOBOT_LLM_BASE_URL": model.url, "AUTOBOT_LLM_MODEL": "fake-small"}
    with running_cluster(tmp_path_factory.mktemp("operator-cluster"), extra_env=extra) as cluster:
        yield cluster


@pytest.fixture
async def visitors(cluster, owner):
    """The same user signed in on worker A and on worker B."""
    await sync_to_async(_grant)(owner)
    pair = [Visitor(worker.address) for worker in cluster.workers]
    for visitor in pair:
        await visitor.login(owner.get_username())
    yield pair
    for visitor in pair:
        await visitor.close()


async def ask(visitor: Visitor, chat_id: str, command: str) -> dict:
    """A whole turn (a plain POST waits for it); returns the stored answer."""
    status, reply = await visitor.call("POST", f"/api/chat/sessions/{chat_id}/messages",
                                       json={"content": f"RUN: {command}", "use_knowledge": False})
    assert status in (200, 201), reply
    return reply


async def ask_and_approve(asking: Visitor, approving: Visitor, chat_id: str, command: str) -> dict:
    """A turn followed as SSE from one worker, its approval given through the other."""
    headers = {**asking._csrf(), "Accept": "text/event-stream"}
    approvals = []
    async with asking.http.post(f"/api/chat/sessions/{chat_id}/messages", headers=headers,
                                json={"content": f"RUN: {command}", "use_knowledge": False}) as response:
        assert response.status == 200, await response.text()
        block = ""
        async for raw in response.content:
            line = raw.decode()
            if line.strip():
                block += line
                continue
            event = json.loads(block.split("data: ", 1)[1]) if "data: " in block else {}
            block = ""
            if event.get("type") == "approval":
                approval = event["approval"]
                approvals.append(approval)
                status, decided = await approving.call(
                    "POST", f"/api/chat/sessions/{chat_id}/approvals/{approval['id']}", json={"decision": "approve"})
                assert status == 200 and decided["status"] == "approved", decided
            if event.get("type") == "done":
                return {**event["message"], "approvals": approvals}
    raise AssertionError("the stream ended without a done event")


async def test_a_turn_on_one_worker_types_into_the_terminal_the_other_worker_runs(cluster, visitors, owner):
    on_a, on_b = visitors
    status, chat = await on_a.call("POST", "/api/chat/sessions", json={})
    assert status == 201, chat
    # The first turn, served by A, opens the operator terminal there.
    first = await ask(on_a, chat["id"], "echo opened-$((40+2))")
    assert first["tool_calls"][0]["status"] == "done" and "opened-42" in first["tool_calls"][0]["output"]
    terminal_id = first["tool_calls"][0]["data"]["terminal_session_id"]
    terminal = await TerminalSession.objects.aget(pk=terminal_id)
    assert terminal.host == worker_id(cluster.workers[0])
    # The user watches it on the Terminal page, on A.
    ws = await on_a.socket(f"/ws/terminal/{terminal_id}/")
    try:
        await read_until(ws, lambda f, _: f["type"] == "session")

        # The next turn is served by B: it types into the same terminal, on A.
        marker = f"autobot-op-{secrets.token_hex(4)}"
        reply = await ask(on_b, chat["id"], f"echo {marker}-$((6*7))")

        ran = reply["tool_calls"][0]
        assert ran["status"] == "done" and ran["exit_code"] == 0, ran
        assert f"{marker}-42" in ran["output"]
        assert ran["data"]["terminal_session_id"] == terminal_id
        await read_until(ws, output_has(f"{marker}-42"))  # the user saw it run
        record = await CommandRecord.objects.aget(pk=ran["data"]["record_id"])
        assert record.session_id == terminal.pk and record.actor == "operator"
        assert record.correlation_id == reply["correlation_id"] and not record.blocked
        assert await TerminalSession.objects.filter(owner=owner).acount() == 1  # no terminal of its own on B
        status, listed = await on_b.call("GET", f"/api/chat/sessions/{chat['id']}")
        assert listed["operator_terminal"] == terminal_id

        # A DANGEROUS command: the default policy refuses it before it reaches any terminal.
        refused = (await ask(on_b, chat["id"], HARMLESS_DANGER))["tool_calls"][0]
        assert refused["status"] == "denied" and refused["risk"] == "DANGEROUS"
        assert not await CommandRecord.objects.filter(command=HARMLESS_DANGER).aexists()

        # Let DANGEROUS calls wait for approval: approved by the owner (through A), typed from B,
        # the RESTRICTED terminal's hook on A still blocks it.
        superuser = await sync_to_async(type(owner).objects.create_superuser)("root-op", password="x" * 12)
        await policy_set(user=superuser, target=owner, dangerous="approve")
        blocked = await ask_and_approve(on_b, on_a, chat["id"], HARMLESS_DANGER)
        call_ = blocked["tool_calls"][0]
        assert blocked["approvals"][0]["command"] == HARMLESS_DANGER
        assert call_["status"] == "failed" and "blocked by the terminal" in call_["output"], call_
        frames = await read_until(ws, lambda f, _: f["type"] == "blocked")
        assert frames[-1]["command"] == HARMLESS_DANGER
        record = await CommandRecord.objects.aget(command=HARMLESS_DANGER)
        assert record.blocked and record.actor == "operator" and record.session_id == terminal.pk
    finally:
        await ws.close()
