"""The chat REST API through Django's async client, against the fake LLM."""

import asyncio
import json
import uuid

import pytest
from asgiref.sync import sync_to_async

from autobot.models import AuditEvent
from chat.models import ChatMessage, ChatSession

pytestmark = pytest.mark.django_db(transaction=True)
BASE = "/api/chat"
SSE = {"Accept": "text/event-stream"}


async def new_session(client, **body):
    response = await client.post(f"{BASE}/sessions", body, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


async def post_message(client, session_id, content, **extra):
    return await client.post(f"{BASE}/sessions/{session_id}/messages", {"content": content, **extra},
                             content_type="application/json", **extra.pop("headers", {}))


async def test_it_creates_lists_renames_and_deletes_sessions(api_client, owner, llm):
    client = api_client(owner)
    first = await new_session(client, title="Backups")
    await new_session(client, title="Disk space")

    listing = (await client.get(f"{BASE}/sessions")).json()
    assert listing["count"] == 2 and listing["items"][0]["title"] == "Disk space"

    found = (await client.get(f"{BASE}/sessions", {"q": "back"})).json()
    assert [s["title"] for s in found["items"]] == ["Backups"]

    page = (await client.get(f"{BASE}/sessions", {"limit": 1, "offset": 1})).json()
    assert page["count"] == 2 and len(page["items"]) == 1

    renamed = await client.patch(f"{BASE}/sessions/{first['id']}", {"title": "Restic"},
                                 content_type="application/json")
    assert renamed.json()["title"] == "Restic"

    assert (await client.delete(f"{BASE}/sessions/{first['id']}")).status_code == 204
    assert (await client.get(f"{BASE}/sessions/{first['id']}")).status_code == 404


async def test_a_session_that_is_not_yours_is_404_everywhere(api_client, owner, stranger, llm):
    session = await new_session(api_client(owner))
    client = api_client(stranger)
    sid = session["id"]

    for response in [
        await client.get(f"{BASE}/sessions/{sid}"),
        await client.patch(f"{BASE}/sessions/{sid}", {"title": "x"}, content_type="application/json"),
        await client.delete(f"{BASE}/sessions/{sid}"),
        await client.get(f"{BASE}/sessions/{sid}/messages"),
        await post_message(client, sid, "hello"),
        await client.get(f"{BASE}/sessions/{sid}/export"),
    ]:
        assert response.status_code == 404
        assert response.json()["code"] == "chat_session_not_found"
    assert (await client.get(f"{BASE}/sessions")).json()["count"] == 0
    assert llm.requests == []


async def test_cancel_over_rest_stops_the_answer_and_keeps_the_partial_text(api_client, ws_connect, owner, stranger,
                                                                              llm):
    llm.pause_after = 1
    sid = (await new_session(api_client(owner)))["id"]
    watcher = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await watcher.send_json_to({"type": "message", "content": "a long answer"})
    assert (await watcher.receive_json_from())["data"] == "Echo:"

    assert (await api_client(stranger).post(f"{BASE}/sessions/{sid}/cancel")).status_code == 404
    response = await api_client(owner).post(f"{BASE}/sessions/{sid}/cancel")
    assert response.status_code == 200 and response.json() == {"cancelled": True}

    done = await watcher.receive_json_from(timeout=10)
    assert done["message"]["status"] == "cancelled" and done["message"]["content"] == "Echo:"
    await asyncio.wait_for(llm.client_gone.wait(), 10)
    assert (await api_client(owner).post(f"{BASE}/sessions/{sid}/cancel")).json() == {"cancelled": False}
    await watcher.disconnect()


async def test_cancel_while_the_answer_is_being_set_up_stops_it_before_the_provider_is_asked(api_client, owner,
                                                                                             llm, monkeypatch):
    from chat import services

    searching, go_on = asyncio.Event(), asyncio.Event()
    real_passages = services._passages

    async def slow_passages(*args, **kwargs):  # the knowledge search taking its time: the window
        searching.set()
        await go_on.wait()
        return await real_passages(*args, **kwargs)

    monkeypatch.setattr(services, "_passages", slow_passages)
    client = api_client(owner)
    sid = (await new_session(client))["id"]
    post = asyncio.ensure_future(post_message(client, sid, "hello"))
    await searching.wait()

    response = await client.post(f"{BASE}/sessions/{sid}/cancel")
    assert response.status_code == 200 and response.json() == {"cancelled": True}
    go_on.set()
    reply = await post
    assert reply.json()["status"] == "cancelled"
    assert llm.requests == []  # the provider was never asked


def hold_set_up(monkeypatch):
    """Keep answers in their set-up (the knowledge search waits) until `go_on` is set: (searching, go_on)."""
    from chat import services

    searching, go_on = asyncio.Event(), asyncio.Event()
    real_passages = services._passages

    async def slow_passages(*args, **kwargs):
        searching.set()
        await go_on.wait()
        return await real_passages(*args, **kwargs)

    monkeypatch.setattr(services, "_passages", slow_passages)
    return searching, go_on


async def test_a_post_while_the_first_answer_is_being_set_up_is_409(api_client, ws_connect, owner, llm,
                                                                     monkeypatch):
    searching, go_on = hold_set_up(monkeypatch)
    client = api_client(owner)
    sid = (await new_session(client))["id"]
    first = asyncio.ensure_future(post_message(client, sid, "one"))
    await searching.wait()  # stored, not started: no answer is streaming yet

    rest = await asyncio.wait_for(post_message(client, sid, "two"), 10)
    assert rest.status_code == 409 and rest.json()["code"] == "generation_running"
    sse = await asyncio.wait_for(post_message(client, sid, "three", headers=SSE), 10)
    assert sse.status_code == 409 and sse.json()["code"] == "generation_running"
    comm = await ws_connect(f"/ws/chat/{sid}/", user=owner)
    await comm.send_json_to({"type": "message", "content": "four"})
    assert (await comm.receive_json_from(timeout=10))["code"] == "generation_running"
    await comm.disconnect()

    go_on.set()
    reply = await first
    assert reply.status_code == 201 and reply.json()["content"] == "Echo: one"
    assert await ChatMessage.objects.filter(session_id=sid, role="assistant").acount() == 1
    assert len(llm.requests) == 1


async def test_two_posts_at_once_start_one_answer(api_client, owner, llm, monkeypatch):
    # The set-up is held until one post has its answer: without that, on a busy machine the first
    # answer can be stored before the second post is even read, and both rightly succeed.
    searching, go_on = hold_set_up(monkeypatch)
    client = api_client(owner)
    sid = (await new_session(client))["id"]
    posts = [asyncio.ensure_future(post_message(client, sid, "one")),
             asyncio.ensure_future(post_message(client, sid, "two", headers=SSE))]
    await asyncio.wait(posts, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    go_on.set()
    responses = await asyncio.gather(*posts)

    refused = [r for r in responses if r.status_code == 409]
    assert len(refused) == 1 and refused[0].json()["code"] == "generation_running"
    for response in responses:
        if response.status_code == 200:  # the streaming one won: read it to the end
            assert "event: done" in b"".join([chunk async for chunk in response.streaming_content]).decode()
        elif response.status_code != 409:
            assert response.status_code == 201
    assert await ChatMessage.objects.filter(session_id=sid, role="assistant").acount() == 1
    assert len(llm.requests) == 1


async def test_staff_can_read_other_peoples_sessions(api_client, owner, staff, llm):
    session = await new_session(api_client(owner), title="mine")
    assert (await api_client(staff).get(f"{BASE}/sessions/{session['id']}")).status_code == 200


async def test_anonymous_is_refused(api_client, llm):
    assert (await api_client(None).get(f"{BASE}/sessions")).status_code == 401


async def test_post_returns_the_complete_reply_and_stores_both_messages(api_client, owner, llm):
    client = api_client(owner)
    session = await new_session(client)

    response = await post_message(client, session["id"], "**bold** <script>x</script>")

    assert response.status_code == 201
    reply = response.json()
    assert reply["role"] == "assistant" and reply["status"] == "complete"
    assert reply["content"] == "Echo: **bold** <script>x</script>"
    assert "<strong>bold</strong>" in reply["html"] and "<script>" not in reply["html"]
    assert reply["model"] == "fake/fake-small" and reply["completion_tokens"] == 3
    assert reply["first_token_ms"] is not None and reply["total_ms"] >= reply["first_token_ms"]

    messages = (await client.get(f"{BASE}/sessions/{session['id']}/messages")).json()
    assert [(m["role"], m["status"]) for m in messages["items"]] == [("user", "complete"), ("assistant", "complete")]
    titled = (await client.get(f"{BASE}/sessions/{session['id']}")).json()
    assert titled["title"] == "**bold** <script>x</script>"


async def test_a_page_catching_up_reads_every_message_newer_than_it_shows_page_by_page(api_client, owner, llm):
    client = api_client(owner)
    session = await new_session(client)
    sid = session["id"]
    await ChatMessage.objects.abulk_create(
        [ChatMessage(session_id=sid, role="user" if n % 2 == 0 else "assistant", content=f"m{n}") for n in range(7)])
    shown = (await client.get(f"{BASE}/sessions/{sid}/messages", {"limit": 2})).json()["items"]

    read, after = [], shown[-1]["id"]
    for _ in range(5):  # bounded, as the page's catch-up is
        page = (await client.get(f"{BASE}/sessions/{sid}/messages", {"after": after, "limit": 2})).json()["items"]
        read += page
        if len(page) < 2:
            break
        after = page[-1]["id"]

    assert [m["content"] for m in shown + read] == [f"m{n}" for n in range(7)]
    counted = (await client.get(f"{BASE}/sessions/{sid}/messages", {"after": shown[-1]["id"], "limit": 2})).json()
    assert counted["count"] == 5
    beyond = await client.get(f"{BASE}/sessions/{sid}/messages", {"after": 10**30})
    assert (beyond.status_code, beyond.json()["items"]) == (200, [])
    bad = await client.get(f"{BASE}/sessions/{sid}/messages", {"after": "newest"})
    assert (bad.status_code, bad.json()["code"]) == (422, "validation_error")



async def test_catching_up_by_id_skips_no_message_whose_time_sorts_it_earlier(api_client, owner, llm):
    """Two workers' clocks disagree: a later row (higher id) carries an earlier `created`. Paging
    by the last id received still reads it."""
    from datetime import timedelta

    client = api_client(owner)
    sid = (await new_session(client))["id"]
    first, second, third = [await ChatMessage.objects.acreate(session_id=sid, role="user", content=f"m{n}")
                            for n in range(3)]
    await ChatMessage.objects.filter(pk=third.pk).aupdate(created=second.created - timedelta(seconds=5))

    read, after = [], first.pk
    for _ in range(5):
        page = (await client.get(f"{BASE}/sessions/{sid}/messages", {"after": after, "limit": 1})).json()["items"]
        if not page:
            break
        read += page
        after = page[-1]["id"]
    assert [m["content"] for m in read] == ["m1", "m2"]

async def test_every_message_is_audited_with_its_length_not_its_content(api_client, owner, llm):
    client = api_client(owner)
    session = await new_session(client)
    await post_message(client, session["id"], "my secret plan")

    events = {e.action: e async for e in AuditEvent.objects.filter(target_id=session["id"])}
    assert events["chat.message"].data["length"] == len("my secret plan")
    assert events["chat.reply"].data["length"] == len("Echo: my secret plan")
    assert events["chat.reply"].data["status"] == "complete"
    assert "secret" not in json.dumps([e.data for e in events.values()])


@pytest.mark.parametrize("content", ["", "   \n  "])
async def test_an_empty_message_is_422(api_client, owner, llm, content):
    client = api_client(owner)
    session = await new_session(client)
    response = await post_message(client, session["id"], content)
    # The schema says content must not be blank (pattern \S), so validation refuses it.
    assert response.status_code == 422 and response.json()["code"] == "validation_error"
    assert "content" in response.json()["detail"]
    assert await ChatMessage.objects.acount() == 0


async def test_regenerate_answers_the_last_question_again_beside_the_first_answer(api_client, owner, llm):
    client = api_client(owner)
    session = await new_session(client)
    first = await post_message(client, session["id"], "what is a lane")
    assert first.status_code == 201, first.content
    again = await client.post(f"{BASE}/sessions/{session['id']}/messages", {"regenerate": True},
                              content_type="application/json")
    assert again.status_code == 201, again.content
    assert again.json()["content"] == "Echo: what is a lane" and again.json()["id"] != first.json()["id"]
    listed = (await client.get(f"{BASE}/sessions/{session['id']}/messages")).json()["items"]
    assert [(m["role"], m["content"]) for m in listed] == [
        ("user", "what is a lane"), ("assistant", "Echo: what is a lane"), ("assistant", "Echo: what is a lane")]
    # The model was asked the question once, without its earlier answer in the prompt.
    assert [m["role"] for m in llm.requests[-1]["messages"] if m["role"] != "system"] == ["user"]
    assert await AuditEvent.objects.filter(action="chat.regenerate").acount() == 1


async def test_regenerate_needs_a_question_and_a_plain_post_needs_content(api_client, owner, llm):
    client = api_client(owner)
    session = await new_session(client)
    nothing = await client.post(f"{BASE}/sessions/{session['id']}/messages", {"regenerate": True},
                                content_type="application/json")
    assert nothing.status_code == 422 and nothing.json()["code"] == "nothing_to_regenerate"
    empty = await client.post(f"{BASE}/sessions/{session['id']}/messages", {}, content_type="application/json")
    assert empty.status_code == 422 and empty.json()["code"] == "empty_message"
    assert await ChatMessage.objects.acount() == 0


async def test_an_oversized_message_is_413(api_client, owner, llm, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 100
    client = api_client(owner)
    session = await new_session(client)
    response = await post_message(client, session["id"], "x" * 101)
    assert response.status_code == 413 and response.json()["code"] == "message_too_large"
    assert llm.requests == []


async def test_a_missing_content_field_is_422(api_client, owner, llm):
    client = api_client(owner)
    session = await new_session(client)
    response = await client.post(f"{BASE}/sessions/{session['id']}/messages", {"use_knowledge": True},
                                 content_type="application/json")
    assert response.status_code == 422


async def test_a_bad_session_id_is_404_not_500(api_client, owner, llm):
    client = api_client(owner)
    assert (await client.get(f"{BASE}/sessions/{uuid.uuid4()}")).status_code == 404
    assert (await client.get(f"{BASE}/sessions/not-a-uuid")).status_code in (404, 422)


async def test_the_provider_down_is_a_503_with_llm_unavailable(api_client, owner, llm, unused_tcp_port):
    from chat.llm.registry import use_registry
    from tests.chat.conftest import fake_registry

    use_registry(fake_registry(f"http://127.0.0.1:{unused_tcp_port}"))
    client = api_client(owner)
    session = await new_session(client)

    response = await post_message(client, session["id"], "hello")

    assert response.status_code == 503
    assert response.json()["code"] == "llm_unavailable" and "unreachable" in response.json()["detail"]
    reply = await ChatMessage.objects.aget(role="assistant")
    assert reply.status == "failed" and reply.error_code == "llm_unavailable"


async def test_a_500_before_the_first_token_is_retried(api_client, owner, llm):
    llm.failures = [500]
    client = api_client(owner)
    session = await new_session(client)
    response = await post_message(client, session["id"], "hello")
    assert response.status_code == 201 and response.json()["content"] == "Echo: hello"


async def test_persistent_500s_are_a_503(api_client, owner, llm):
    llm.failures = [500] * 10
    client = api_client(owner)
    session = await new_session(client)
    response = await post_message(client, session["id"], "hello")
    assert response.status_code == 503 and "HTTP 500" in response.json()["detail"]


async def test_a_close_mid_stream_keeps_the_partial_answer_as_failed(api_client, owner, llm):
    llm.disconnect_after = 2
    client = api_client(owner)
    session = await new_session(client)

    response = await post_message(client, session["id"], "one two three four")

    assert response.status_code == 503 and "mid-answer" in response.json()["detail"]
    reply = await ChatMessage.objects.aget(role="assistant")
    assert reply.status == "failed" and reply.content == "Echo: one"


async def test_malformed_json_from_the_provider_is_a_503(api_client, owner, llm):
    llm.malformed_after = 1
    client = api_client(owner)
    session = await new_session(client)
    response = await post_message(client, session["id"], "one two")
    assert response.status_code == 503 and "malformed" in response.json()["detail"]


async def test_the_openai_provider_is_used_when_the_session_picks_it(api_client, owner, llm):
    client = api_client(owner)
    session = await new_session(client, model="fakeai/fake-small")
    assert session["model"] == "fakeai/fake-small"
    reply = (await post_message(client, session["id"], "hi")).json()
    assert reply["model"] == "fakeai/fake-small" and reply["content"] == "Echo: hi"
    assert "stream_options" in llm.requests[-1]


async def test_sse_streams_tokens_then_done(api_client, owner, llm):
    client = api_client(owner)
    session = await new_session(client)

    response = await client.post(f"{BASE}/sessions/{session['id']}/messages", {"content": "a b c"},
                                 content_type="application/json", headers=SSE)

    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    events = [json.loads(block.split("data: ", 1)[1]) for block in body.strip().split("\n\n")]
    tokens = [e for e in events if e["type"] == "token"]
    assert "".join(t["data"] for t in tokens) == "Echo: a b c"
    assert [t["offset"] for t in tokens] == [0, 5, 7, 9]
    assert events[-1]["type"] == "done" and events[-1]["message"]["status"] == "complete"


async def test_sse_reports_a_provider_failure_as_an_error_event(api_client, owner, llm):
    llm.failures = [500] * 10
    client = api_client(owner)
    session = await new_session(client)
    response = await client.post(f"{BASE}/sessions/{session['id']}/messages", {"content": "a"},
                                 content_type="application/json", headers=SSE)
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    assert "event: error" in body and '"code": "llm_unavailable"' in body
    assert body.rstrip().split("\n\n")[-1].startswith("event: done")


async def answer_under_way(client, llm, session_id):
    """Post over SSE and read up to the first token (the fake LLM then waits for `llm.resume`):
    the rest of the stream."""
    llm.pause_after = 1
    response = await post_message(client, session_id, "a b", headers=SSE)
    stream = aiter(response.streaming_content)
    await anext(stream)  # the first token: the answer is under way
    return stream


async def test_a_second_message_while_answering_is_409(api_client, owner, llm):
    client = api_client(owner)
    session = await new_session(client)
    stream = await answer_under_way(client, llm, session["id"])

    second = await post_message(client, session["id"], "again")
    assert second.status_code == 409 and second.json()["code"] == "generation_running"

    llm.resume.set()
    rest = b"".join([chunk async for chunk in stream]).decode()
    assert "event: done" in rest


async def test_an_sse_post_is_refused_with_a_status_before_any_streaming(api_client, owner, stranger, llm):
    client = api_client(owner)
    session = await new_session(client)
    stream = await answer_under_way(client, llm, session["id"])

    busy = await post_message(client, session["id"], "again", headers=SSE)
    assert busy.status_code == 409 and busy.json()["code"] == "generation_running"
    not_yours = await post_message(api_client(stranger), session["id"], "hi", headers=SSE)
    assert not_yours.status_code == 404
    empty = await post_message(client, session["id"], " ", headers=SSE)
    assert empty.status_code == 422 and empty.json()["code"] == "validation_error"

    llm.resume.set()
    assert "event: done" in b"".join([chunk async for chunk in stream]).decode()
    assert await ChatMessage.objects.filter(session_id=session["id"]).acount() == 2


async def test_the_question_and_its_audit_event_are_stored_before_the_first_token(api_client, owner, llm):
    llm.pause_after = 0
    client = api_client(owner)
    session = await new_session(client)
    response = await client.post(f"{BASE}/sessions/{session['id']}/messages", {"content": "hello"},
                                 content_type="application/json", headers=SSE)
    stream = aiter(response.streaming_content)
    await llm.requested.wait()  # the provider has been asked, so the answer has started

    question = await ChatMessage.objects.aget(session_id=session["id"], role="user")
    event = await AuditEvent.objects.aget(action="chat.message", target_id=session["id"])
    assert event.data["message_id"] == question.pk and event.data["length"] == len("hello")

    llm.resume.set()
    assert "event: done" in b"".join([chunk async for chunk in stream]).decode()


async def test_export_as_markdown_and_json(api_client, owner, llm):
    client = api_client(owner)
    session = await new_session(client, title="Ops")
    await post_message(client, session["id"], "hello")

    md = await client.get(f"{BASE}/sessions/{session['id']}/export", {"format": "md"})
    assert md["Content-Disposition"].startswith("attachment;")
    text = md.content.decode()
    assert text.startswith("# Ops") and "## You" in text and "Echo: hello" in text

    data = (await client.get(f"{BASE}/sessions/{session['id']}/export", {"format": "json"})).json()
    assert data["session"]["title"] == "Ops"
    assert [m["content"] for m in data["messages"]] == ["hello", "Echo: hello"]

    assert (await client.get(f"{BASE}/sessions/{session['id']}/export", {"format": "pdf"})).status_code == 422


async def test_models_lists_every_provider(api_client, owner, llm):
    data = (await api_client(owner).get(f"{BASE}/models")).json()
    ids = {m["id"] for m in data["items"]}
    assert {"fake/fake-small", "fake/fake-large", "fakeai/fake-small", "offline/knowledge-base"} <= ids
    assert data["default"] == "fake/fake-small"


async def test_an_unknown_provider_in_a_session_model_is_422(api_client, owner, offline):
    response = await api_client(owner).post(f"{BASE}/sessions", {"model": "nope/"}, content_type="application/json")
    # "nope" is not a provider, so it is read as a model name of the default (offline) provider.
    assert response.status_code == 201 and response.json()["model"] == "offline/knowledge-base"
    assert await ChatSession.objects.acount() == 1


async def test_offline_mode_answers_and_says_no_model_is_configured(api_client, owner, offline):
    client = api_client(owner)
    session = await new_session(client)
    reply = (await post_message(client, session["id"], "how do I rotate logs?")).json()
    assert "No language model is configured" in reply["content"]
    assert "AUTOBOT_LLM_PROVIDER" in reply["content"]
    assert reply["model"] == "offline/knowledge-base"


async def test_an_sse_client_that_disconnects_mid_stream_leaves_the_answer_to_finish(owner, token_for, llm):
    """Through the real ASGI handler: the client goes away, the server-side answer completes."""
    from channels.testing import ApplicationCommunicator

    from autobot.asgi import application
    from chat import generation

    llm.pause_after = 1
    session = await ChatSession.objects.acreate(owner=owner)
    token = await sync_to_async(token_for)(owner)
    scope = {
        "type": "http", "asgi": {"version": "3"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": f"{BASE}/sessions/{session.id}/messages", "raw_path": b"", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode()),
                    (b"accept", b"text/event-stream"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
    }
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": b'{"content": "x y z"}', "more_body": False})

    start = await comm.receive_output(10)
    assert start["type"] == "http.response.start" and start["status"] == 200
    first = await comm.receive_output(10)
    assert b"event: token" in first["body"]

    gen = generation.answers.running(session.id)
    await comm.send_input({"type": "http.disconnect"})
    await comm.wait(10)  # the response task ends without waiting for the answer
    llm.resume.set()
    await gen.finished.wait()

    reply = await ChatMessage.objects.aget(session=session, role="assistant")
    assert reply.status == "complete" and reply.content == "Echo: x y z"
