"""Shutdown (autobot/lifespan.py → answers.stop_all): no answer starts once it has begun, and every
question already stored gets its reply stored, so a session reopened later shows it answered
`cancelled`, never waiting. Against the fake LLM on loopback; each test's teardown (the `llm`
fixture) stops all answers and reopens for the next test."""

import asyncio

import pytest

from chat.generation import answers
from chat.models import ChatMessage
from tests.chat.test_api import BASE, SSE, hold_set_up, new_session, post_message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


async def messages(client, session_id) -> list[dict]:
    response = await client.get(f"{BASE}/sessions/{session_id}/messages")
    assert response.status_code == 200
    return [(m["role"], m["content"], m["status"]) for m in response.json()["items"]]


async def test_a_post_once_shutdown_has_begun_is_503_shutting_down(api_client, ws_connect, owner, llm):
    client = api_client(owner)
    sid = (await new_session(client))["id"]
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await asyncio.wait_for(answers.stop_all(), 10)

    for response in [await post_message(client, sid, "one"), await post_message(client, sid, "two", headers=SSE)]:
        assert response.status_code == 503
        assert response.json() == {"detail": response.json()["detail"], "code": "shutting_down"}
    await comm.send_json_to({"type": "message", "content": "three"})
    error = await comm.receive_json_from(timeout=10)
    assert error["type"] == "error" and error["code"] == "shutting_down" and error["detail"]
    await comm.receive_nothing()
    await comm.disconnect()

    assert await messages(client, sid) == [] and llm.requests == []
    answers.reopen()
    assert (await post_message(client, sid, "four")).json()["content"] == "Echo: four"


async def test_a_post_while_the_answers_are_being_stopped_is_refused_too(api_client, ws_connect, owner, llm):
    llm.pause_after = 1
    client = api_client(owner)
    first, second = (await new_session(client))["id"], (await new_session(client))["id"]
    watcher = await ws_connect(f"/ws/chat/{first}/", user=owner)
    await watcher.send_json_to({"type": "message", "content": "a long answer"})
    assert (await watcher.receive_json_from(timeout=10))["data"] == "Echo:"

    stopping = asyncio.ensure_future(answers.stop_all())  # its first step runs before the post is read
    response = await post_message(client, second, "too late")
    assert response.status_code == 503 and response.json()["code"] == "shutting_down"
    await asyncio.wait_for(stopping, 10)
    assert (await watcher.receive_json_from(timeout=10))["message"]["status"] == "cancelled"
    await watcher.disconnect()
    assert await messages(client, second) == [] and len(llm.requests) == 1


@pytest.mark.parametrize("headers", [{}, SSE], ids=["json", "sse"])
async def test_an_answer_still_being_set_up_is_stopped_and_its_question_answered_cancelled(
        api_client, owner, llm, monkeypatch, headers):
    searching, go_on = hold_set_up(monkeypatch)
    client = api_client(owner)
    sid = (await new_session(client))["id"]
    post = asyncio.ensure_future(post_message(client, sid, "one", headers=headers))
    await searching.wait()  # the question is being stored, the knowledge searched: not started

    await asyncio.wait_for(answers.stop_all(), 10)
    go_on.set()
    response = await asyncio.wait_for(post, 10)
    if headers:  # the stream had begun: it ends with the reason
        assert response.status_code == 200
        body = b"".join([chunk async for chunk in response.streaming_content]).decode()
        assert body.startswith("event: error") and '"code": "shutting_down"' in body
    else:
        assert response.status_code == 503 and response.json()["code"] == "shutting_down"
    assert llm.requests == []  # the provider was never asked

    answers.reopen()  # the server restarted: the session shows the question answered, cancelled
    assert await messages(client, sid) == [("user", "one", "complete"), ("assistant", "", "cancelled")]
    assert (await post_message(client, sid, "two")).json()["content"] == "Echo: two"


async def test_a_running_answer_stopped_at_shutdown_keeps_its_text_so_far_as_cancelled(api_client, ws_connect,
                                                                                          owner, llm):
    llm.pause_after = 2
    client = api_client(owner)
    sid = (await new_session(client))["id"]
    watcher = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await watcher.send_json_to({"type": "message", "content": "tell me more"})
    assert (await watcher.receive_json_from(timeout=10))["data"] == "Echo:"
    assert (await watcher.receive_json_from(timeout=10))["data"] == " tell"

    await asyncio.wait_for(answers.stop_all(), 10)
    done = await watcher.receive_json_from(timeout=10)
    assert done["type"] == "done"
    assert done["message"]["status"] == "cancelled" and done["message"]["content"] == "Echo: tell"
    await asyncio.wait_for(llm.client_gone.wait(), 10)  # the upstream request was closed
    await watcher.disconnect()

    answers.reopen()
    assert await messages(client, sid) == [("user", "tell me more", "complete"),
                                           ("assistant", "Echo: tell", "cancelled")]
    reply = await ChatMessage.objects.aget(session_id=sid, role="assistant")
    assert reply.completion_tokens is None  # stopped, not finished


async def test_a_set_up_that_fails_leaves_its_question_answered_failed_not_waiting(api_client, owner, llm,
                                                                                   monkeypatch):
    from autobot.errors import Unavailable
    from chat import services

    async def search_down(**_kwargs):  # the knowledge base's database answers with an error
        raise Unavailable("the knowledge search is not answering", code="search_unavailable")

    monkeypatch.setattr(services, "knowledge_search", search_down)
    client = api_client(owner)
    sid = (await new_session(client))["id"]
    response = await post_message(client, sid, "one")
    assert response.status_code == 503 and response.json()["code"] == "search_unavailable"
    assert await messages(client, sid) == [("user", "one", "complete"), ("assistant", "", "failed")]
    reply = (await client.get(f"{BASE}/sessions/{sid}/messages")).json()["items"][1]
    assert reply["error_code"] == "search_unavailable"  # its own reason, not a later reaping's "interrupted"
    assert llm.requests == []

    monkeypatch.undo()  # the search is back: the session takes the next question at once
    assert (await post_message(client, sid, "two")).json()["content"] == "Echo: two"
