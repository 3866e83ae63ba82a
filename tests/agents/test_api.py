"""REST: registry, cards, sending (wait / no wait), the log, and every bad input."""

import json

import pytest

from agents import services
from agents.bus import AgentEndpoint, HandlerError
from agents.models import Agent, AgentMessage

pytestmark = pytest.mark.django_db(transaction=True)


async def post(client, body, query="?wait=true&timeout=5"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return await client.post(f"/api/agents/messages{query}", data=data, content_type="application/json")


def request_to(recipient=None, action="echo", data=None, **header):
    header = {"message_type": "REQUEST", **({"recipient_id": recipient} if recipient else {}), **header}
    return {"header": header, "payload": {"action": action, "data": data or {}}}


@pytest.fixture
async def echo_agent():
    """An in-process agent 'echo' registered in the database like any external one."""
    bus = await services.get_bus()
    await Agent.objects.acreate(id="echo", name="Echo", kind=Agent.Kind.EXTERNAL, capabilities=["echo"])

    async def handle(message):
        if message.payload.action == "fail":
            raise HandlerError("asked to fail", code="asked_to_fail")
        return {"echo": message.payload.data, "sender": message.header.sender_id}

    endpoint = await AgentEndpoint(bus, "echo", handle, capabilities=["echo"]).start()
    yield endpoint
    await endpoint.stop()


async def test_the_registry_lists_the_builtins(owner, api_client):
    response = await api_client(owner).get("/api/agents/")
    assert response.status_code == 200
    ids = {a["id"]: a for a in response.json()["items"]}
    assert {"knowledge", "terminal", "chat"} <= set(ids)
    assert ids["knowledge"]["status"] == "online"
    assert "search" in ids["knowledge"]["capabilities"]


async def test_one_agent_and_its_card(owner, api_client):
    client = api_client(owner)
    await client.get("/api/agents/")  # starts the bus and built-ins
    agent = (await client.get("/api/agents/knowledge")).json()
    assert agent["kind"] == "builtin"
    card = (await client.get("/api/agents/knowledge/card")).json()
    assert card["name"] == "Knowledge base"
    assert card["authentication"]["schemes"][0] == "bearer"
    assert any(skill["id"] == "search" for skill in card["skills"])
    assert card["url"].endswith("/api/agents/messages")


async def test_an_unknown_agent_is_404(owner, api_client):
    response = await api_client(owner).get("/api/agents/nobody")
    assert response.status_code == 404
    assert response.json()["code"] == "agent_not_found"


async def test_anonymous_callers_are_refused(api_client):
    assert (await api_client(None).get("/api/agents/")).status_code == 401


async def test_a_waited_request_returns_the_response(owner, api_client, echo_agent):
    response = await post(api_client(owner), request_to("echo", data={"x": 1}, priority="MessagePriority.HIGH"))
    assert response.status_code == 200, response.json()
    answer = response.json()
    assert answer["header"]["message_type"] == "RESPONSE"
    assert answer["header"]["priority"] == "HIGH"
    assert answer["payload"]["data"] == {"echo": {"x": 1}, "sender": "user:owner"}
    row = await AgentMessage.objects.aget(message_id=answer["header"]["correlation_id"])
    assert row.status == "answered" and row.latency_ms is not None and row.user_id == owner.pk


async def test_a_request_by_capability(owner, api_client, echo_agent):
    body = {"header": {"message_type": "request", "capability": "echo"}, "payload": {"action": "echo"}}
    response = await post(api_client(owner), body)
    assert response.status_code == 200
    assert response.json()["header"]["sender_id"] == "echo"


async def test_server_fields_are_filled_in_by_the_server(owner, api_client, echo_agent):
    body = request_to("echo", sender_id="knowledge", message_id="not-even-a-uuid", timestamp="whenever")
    response = await post(api_client(owner), body)
    assert response.status_code == 200
    assert response.json()["payload"]["data"]["sender"] == "user:owner"


async def test_an_agent_error_is_502_with_the_error_message(owner, api_client, echo_agent):
    response = await post(api_client(owner), request_to("echo", action="fail"))
    assert response.status_code == 502
    body = response.json()
    assert body["code"] == "asked_to_fail"
    assert body["message"]["header"]["message_type"] == "ERROR"


async def test_without_wait_it_is_accepted_and_the_answer_is_logged(owner, api_client, echo_agent):
    response = await post(api_client(owner), request_to("echo"), query="")
    assert response.status_code == 202
    message_id = response.json()["message_id"]
    await echo_agent.wait_handled(1)
    row = await AgentMessage.objects.aget(message_id=message_id)
    assert row.message_type == "REQUEST"


async def test_a_request_to_an_offline_agent_is_503(owner, api_client):
    response = await post(api_client(owner), request_to("ghost"), query="?wait=true&timeout=0.5")
    assert response.status_code == 503
    assert response.json()["code"] == "agent_unavailable"


async def test_a_broadcast_is_accepted(owner, api_client, echo_agent):
    body = {"header": {"message_type": "MessageType.BROADCAST"}, "payload": {"action": "hello"}}
    response = await post(api_client(owner), body, query="")
    assert response.status_code == 202
    await echo_agent.wait_handled(1)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "invalid_json"),
        ("[" * 10_000 + "]" * 10_000, 400, "invalid_json"),
        ("[]", 422, "invalid_message"),
        ({"header": {"message_type": "SHOUT", "recipient_id": "echo"}, "payload": {"action": "x"}}, 422,
         "invalid_message"),
        ({"header": {"message_type": "REQUEST", "recipient_id": "echo", "priority": 9}, "payload": {"action": "x"}},
         422, "invalid_message"),
        ({"header": {"message_type": "REQUEST"}, "payload": {"action": "x"}}, 422, "invalid_message"),
        ({"header": {"message_type": "REQUEST", "recipient_id": "echo"}, "payload": {"action": "x", "data": [1]}},
         422, "invalid_message"),
        ({"header": {"message_type": "RESPONSE", "correlation_id": "6f1c0f57-8d5e-4b59-9a57-2a4f4b0f3a11"},
          "payload": {"action": "x"}}, 422, "invalid_message"),
        ({"header": {"message_type": "REQUEST", "recipient_id": "echo"},
          "payload": {"action": "x", "data": {"blob": "x" * 300_000}}}, 413, "too_large"),
    ],
    ids=["malformed", "too-deep", "not-object", "bad-type", "bad-priority", "no-recipient", "wrong-type", "response",
         "oversized"],
)
async def test_bad_messages_get_a_clear_error(owner, api_client, body, status, code):
    response = await post(api_client(owner), body)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["detail"]


async def test_the_log_shows_own_messages_and_staff_see_all(owner, stranger, staff, api_client, echo_agent):
    await post(api_client(owner), request_to("echo"))
    await post(api_client(stranger), request_to("echo", action="fail"))
    mine = (await api_client(owner).get("/api/agents/messages")).json()
    assert mine["count"] == 1 and mine["items"][0]["sender_id"] == "user:owner"
    everyone = (await api_client(staff).get("/api/agents/messages?agent=echo")).json()
    assert everyone["count"] == 2
    failed = (await api_client(staff).get("/api/agents/messages?status=failed")).json()
    assert [i["sender_id"] for i in failed["items"]] == ["user:stranger"]


async def test_a_too_long_timeout_is_refused(owner, api_client):
    response = await post(api_client(owner), request_to("echo"), query="?wait=true&timeout=100000")
    assert response.status_code == 422


async def test_a_request_is_claimed_once_across_processes(owner, echo_agent):
    """A retry that lands on another process reading the same inbox is not handled again."""
    from agents.bus import Inbox, RequestTimeout
    from agents.protocol import MessageType

    bus = await services.get_bus()
    message = bus.message(MessageType.REQUEST, "echo", {"n": 1}, recipient_id="echo", sender_id="user:owner")
    await bus.request_message(message)
    echo_agent.inbox = Inbox(bus, "echo")  # what another process's endpoint remembers: nothing
    with pytest.raises(RequestTimeout):
        await bus.request_message(message, timeout=0.3, attempts=1)
    assert echo_agent.handled == 1


async def test_the_old_card_says_it_is_deprecated_and_names_its_successor(owner, api_client):
    client = api_client(owner)
    await client.get("/api/agents/")  # starts the bus and built-ins
    response = await client.get("/api/agents/knowledge/card")
    assert response.status_code == 200 and response.json()["name"] == "Knowledge base"  # still served
    assert response.headers["Deprecation"] == "@1796515200"  # RFC 9745: a date, deprecated since then
    assert response.headers["Link"] == '</.well-known/agent-card.json>; rel="successor-version"'


async def test_the_openapi_document_marks_the_old_card_deprecated(api_client):
    document = (await api_client(None).get("/api/openapi.json")).json()
    assert document["paths"]["/api/agents/{agent_id}/card"]["get"]["deprecated"] is True
    assert not document["paths"]["/api/agents/{agent_id}"]["get"].get("deprecated")


# --- the log after a row: what a page that was away missed (?after=<id>)

async def log_rows(user, actions: str) -> list[AgentMessage]:
    """One NOTIFICATION log row per letter of ``actions``, the user's, in that order."""
    import uuid

    return [await AgentMessage.objects.acreate(
        message_id=uuid.uuid4(), message_type="NOTIFICATION", sender_id=f"user:{user.get_username()}",
        action=action, status=AgentMessage.Status.DELIVERED, user=user) for action in actions]


async def read_after(client, cursor: int, limit: int, query: str = "") -> tuple[list[dict], list[int]]:
    """Page forward from ``cursor`` until a short page, as the agents page does: every row and
    each page's count."""
    rows, counts = [], []
    for _ in range(10):  # a server ignoring the cursor would answer full pages for ever
        response = await client.get(f"/api/agents/messages?after={cursor}&limit={limit}{query}")
        assert response.status_code == 200, response.json()
        page = response.json()
        rows += page["items"]
        counts.append(page["count"])
        if len(page["items"]) < limit:
            return rows, counts
        cursor = page["items"][-1]["id"]
    raise AssertionError(f"no short page in 10: {[row['action'] for row in rows]}")


async def test_the_log_after_a_row_pages_forward_through_every_newer_row_oldest_first(owner, api_client):
    seen = await log_rows(owner, "ab")
    missed = await log_rows(owner, "cdefg")
    rows, counts = await read_after(api_client(owner), seen[-1].pk, limit=2)
    assert [row["action"] for row in rows] == list("cdefg")
    assert [row["id"] for row in rows] == [row.pk for row in missed]
    assert counts == [5, 3, 1]  # the rows after each page's cursor


async def test_the_log_after_a_row_shows_only_own_rows_and_staff_see_all(owner, stranger, staff, api_client):
    start = (await log_rows(owner, "a"))[0].pk
    await log_rows(stranger, "x")
    await log_rows(owner, "b")
    await log_rows(stranger, "y")
    mine, _ = await read_after(api_client(owner), start, limit=1)
    assert [row["action"] for row in mine] == ["b"]
    theirs, _ = await read_after(api_client(stranger), start, limit=1)
    assert [row["action"] for row in theirs] == ["x", "y"]
    everyone, _ = await read_after(api_client(staff), start, limit=1)
    assert [row["action"] for row in everyone] == ["x", "b", "y"]


async def test_the_log_after_a_row_keeps_the_other_filters(owner, api_client):
    start = (await log_rows(owner, "a"))[0].pk
    await log_rows(owner, "bab")
    rows, _ = await read_after(api_client(owner), start, limit=5, query="&action=b")
    assert [row["action"] for row in rows] == ["b", "b"]


async def test_a_cursor_past_every_row_or_of_another_user_is_a_plain_position(owner, stranger, api_client):
    theirs = (await log_rows(stranger, "x"))[0].pk
    await log_rows(owner, "a")
    rows, _ = await read_after(api_client(owner), theirs, limit=5)
    assert [row["action"] for row in rows] == ["a"]
    rows, counts = await read_after(api_client(owner), 2**63 - 1, limit=5)
    assert rows == [] and counts == [0]


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", str(2**63), "1e3"])
async def test_a_bad_cursor_is_a_422_naming_it(owner, api_client, cursor):
    response = await api_client(owner).get(f"/api/agents/messages?after={cursor}")
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error" and body["detail"]
    assert any("after" in error["loc"] for error in body["errors"]), body


async def test_the_log_after_a_row_needs_a_login(api_client):
    response = await api_client(None).get("/api/agents/messages?after=0")
    assert response.status_code == 401


async def test_the_openapi_document_describes_the_log_cursor(api_client):
    document = (await api_client(None).get("/api/openapi.json")).json()
    operation = document["paths"]["/api/agents/messages"]["get"]
    after = next(p for p in operation["parameters"] if p["name"] == "after")
    assert after["in"] == "query" and after["description"]
    assert {"422", "401"} <= set(map(str, operation["responses"]))
