"""Chat services against a real database, the real knowledge service and the fake LLM."""

import pytest

from autobot.errors import InvalidInput, LimitExceeded, NotFound, Unavailable
from chat import services
from chat.llm.registry import use_registry
from chat.models import ChatMessage, ChatSession
from tests.chat.conftest import fake_registry

pytestmark = pytest.mark.django_db(transaction=True)

RESTIC = "Backups run nightly with restic to the NAS. Restore with restic restore latest."


async def knowledge_entry(user, content=RESTIC, title="Backup runbook"):
    from knowledge.services import entry_create

    return await entry_create(user=user, title=title, content=content, source="https://wiki.example/backups")


async def ask(user, content, **kwargs):
    session = await services.session_create(user=user)
    posted = await services.message_post(user=user, session_id=session.id, content=content, **kwargs)
    return await services.reply_wait(posted)


async def test_answers_are_grounded_in_the_users_knowledge_with_citations(owner, llm):
    entry = await knowledge_entry(owner)

    reply = await ask(owner, "restic")

    system = llm.requests[-1]["messages"][0]
    assert system["role"] == "system" and "restic to the NAS" in system["content"]
    assert "[1] Backup runbook (https://wiki.example/backups)" in system["content"]
    assert reply["citations"][0]["entry_id"] == entry.pk
    assert reply["citations"][0]["source"] == "https://wiki.example/backups"


async def test_other_users_knowledge_is_never_used(owner, colleague, llm):
    await knowledge_entry(colleague)
    reply = await ask(owner, "restic")
    assert reply["citations"] == []
    assert "restic to the NAS" not in llm.requests[-1]["messages"][0]["content"]


async def test_use_knowledge_false_skips_grounding(owner, llm):
    await knowledge_entry(owner)
    reply = await ask(owner, "restic", use_knowledge=False)
    assert reply["citations"] == [] and "NAS" not in llm.requests[-1]["messages"][0]["content"]


async def test_history_is_sent_with_the_next_question(owner, llm):
    session = await services.session_create(user=owner)
    for text in ("first", "second"):
        posted = await services.message_post(user=owner, session_id=session.id, content=text)
        await services.reply_wait(posted)
    roles = [(m["role"], m["content"]) for m in llm.requests[-1]["messages"][1:]]
    assert roles == [("user", "first"), ("assistant", "Echo: first"), ("user", "second")]


async def test_offline_answers_with_passages_and_citations(owner, offline):
    entry = await knowledge_entry(owner)
    reply = await ask(owner, "restic")
    assert "No language model is configured" in reply["content"]
    assert "restic to the NAS" in reply["content"]
    assert reply["citations"][0]["entry_id"] == entry.pk


async def test_completion_oneshot_follows_the_contract(owner, llm):
    entry = await knowledge_entry(owner)

    result = await services.completion_oneshot(user=owner, prompt="restic")

    assert set(result) == {"content", "citations", "model"}
    assert result["content"] == "Echo: restic" and result["model"] == "fake/fake-small"
    assert result["citations"][0]["entry_id"] == entry.pk
    assert await ChatSession.objects.acount() == 0  # nothing stored


async def test_completion_oneshot_picks_a_model_and_reports_failures(owner, llm, unused_tcp_port):
    result = await services.completion_oneshot(user=owner, prompt="hi", model="fakeai/fake-large",
                                               use_knowledge=False)
    assert result == {"content": "Echo: hi", "citations": [], "model": "fakeai/fake-large"}

    use_registry(fake_registry(f"http://127.0.0.1:{unused_tcp_port}"))
    with pytest.raises(Unavailable) as info:
        await services.completion_oneshot(user=owner, prompt="hi")
    assert info.value.code == "llm_unavailable"


async def test_completion_oneshot_validates_the_prompt(owner, llm, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 5
    with pytest.raises(InvalidInput):
        await services.completion_oneshot(user=owner, prompt="")
    with pytest.raises(LimitExceeded):
        await services.completion_oneshot(user=owner, prompt="123456")


async def test_the_title_comes_from_the_first_message(owner, llm):
    session = await services.session_create(user=owner)
    long = "Why does the nightly backup job fail with permission denied on the NAS share sometimes?"
    await services.reply_wait(await services.message_post(user=owner, session_id=session.id, content=long))
    session = await ChatSession.objects.aget(pk=session.id)
    assert session.title.endswith("…") and len(session.title) <= 61 and long.startswith(session.title[:-1])


async def test_an_answer_orphaned_by_a_restart_does_not_block_the_session(owner, llm):
    session = await services.session_create(user=owner)
    await ChatMessage.objects.acreate(session=session, role="assistant", status="streaming", content="half")

    reply = await services.reply_wait(await services.message_post(user=owner, session_id=session.id, content="hi"))

    assert reply["status"] == "complete"
    orphan = await ChatMessage.objects.aget(content="half")
    assert orphan.status == "failed" and orphan.error_code == "interrupted"


async def test_foreign_sessions_are_not_found(owner, stranger, llm):
    session = await services.session_create(user=owner)
    with pytest.raises(NotFound):
        await services.message_post(user=stranger, session_id=session.id, content="hi")
    with pytest.raises(NotFound):
        await services.generation_cancel(user=stranger, session_id=session.id)


async def test_deleting_a_session_mid_answer_stops_it(owner, llm):
    llm.pause_after = 1
    session = await services.session_create(user=owner)
    posted = await services.message_post(user=owner, session_id=session.id, content="a b c")
    queue = posted.answer.subscribe()
    await queue.get()  # first token

    await services.session_delete(user=owner, session_id=session.id)
    await posted.answer.finished.wait()

    assert await ChatMessage.objects.acount() == 0
    assert llm.completed == 0


@pytest.mark.postgres
def test_workers_posting_to_one_session_at_the_same_instant_start_one_answer(owner, settings):
    """Each thread stands for a worker process (its own database connection, no shared admission):
    the session row lock lets exactly one of them store its question."""
    import threading

    from django.db import connection

    from autobot.errors import Conflict

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}  # several workers
    session = ChatSession.objects.create(owner=owner, title="race")
    start, outcomes = threading.Barrier(6), []

    def post(n):
        try:
            start.wait(timeout=10)
            services._store_question(owner, session, f"question {n}", False, "fake:fake-small", None)
            outcomes.append("stored")
        except Conflict:
            outcomes.append("busy")
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["busy"] * 5 + ["stored"]
    assert session.messages.filter(status=ChatMessage.Status.STREAMING).count() == 1


async def test_a_refused_message_still_fails_the_answer_a_stopped_worker_left_streaming(owner, llm, settings):
    """Several workers: one answer is still being generated elsewhere (the message is refused),
    another was left streaming by a worker that has stopped; the refusal keeps that one failed."""
    import asyncio
    import sys

    from autobot.errors import Conflict
    from autobot.workers import WORKER_ID

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}  # several workers
    gone = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await gone.wait()
    host = WORKER_ID.rpartition(":")[0]
    session = await services.session_create(user=owner)
    await ChatMessage.objects.acreate(session=session, role="assistant", status="streaming", content="orphan",
                                      worker=f"{host}:{gone.pid}")
    await ChatMessage.objects.acreate(session=session, role="assistant", status="streaming", content="running",
                                      worker=f"{host}:1")  # a process that runs: an answer in progress

    with pytest.raises(Conflict) as info:
        await services.message_post(user=owner, session_id=session.id, content="hi")

    assert info.value.code == "generation_running"
    orphan = await ChatMessage.objects.aget(content="orphan")
    assert (orphan.status, orphan.error_code) == ("failed", "interrupted")
    assert (await ChatMessage.objects.aget(content="running")).status == "streaming"
