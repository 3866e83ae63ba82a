"""A session deleted from another worker while its answer is being generated here: the answer
stops, whether the Stop reaches it over the session's control group or (the group emptied by a
Redis restart) the generator finds the reply's row gone. Before, only an answer running on the
deleting worker was stopped: elsewhere the model went on being asked, and the operator acting,
for a conversation that no longer existed."""

import asyncio

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from chat.generation import answers, control_group
from chat.models import ChatMessage, ChatSession
from tests.chat.test_consumers import make_session
from tests.conftest import make_token
from tests.scale.test_chat_restart import started
from tests.scale.test_layer_restart import empty, joined

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.timeout(90)]


async def delete_from(worker, token: str, sid: str) -> None:
    """The session's deletion, as a REST client asks it, of the other worker."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.delete(f"http://{worker.address}/api/chat/sessions/{sid}") as response:
            assert response.status == 204, await response.text()


async def ended(answer, within: float = 20) -> None:
    await asyncio.wait_for(asyncio.shield(answer.task), within)


async def a_long_answer(owner, llm):
    llm.tokens = [f"w{n} " for n in range(200)]
    llm.delay = 0.05  # ten seconds in all
    sid = await make_session(owner)
    answer = await started(owner, sid, "many words", tokens=1)
    await joined(control_group(sid))
    return sid, answer


async def test_a_session_deleted_on_another_worker_stops_its_answer_here(own_redis, other_worker, owner, llm):
    token = await sync_to_async(make_token)(owner)
    sid, answer = await a_long_answer(owner, llm)

    await delete_from(other_worker, token, sid)

    await ended(answer)
    assert not answer.text.endswith("w199 ")
    assert answers.running(sid) is None
    assert not await ChatSession.objects.filter(pk=sid).aexists()
    assert not await ChatMessage.objects.filter(session_id=sid).aexists()


async def test_a_deletion_that_no_group_carried_stops_the_answer_at_its_next_write(own_redis, other_worker, owner,
                                                                                  llm, settings):
    settings.LAYER_WATCH_SECONDS = 600  # the generator does not notice the restart: only the row tells
    token = await sync_to_async(make_token)(owner)
    sid, answer = await a_long_answer(owner, llm)

    await asyncio.to_thread(empty, own_redis)
    await delete_from(other_worker, token, sid)

    await ended(answer)
    assert not answer.text.endswith("w199 ")
    assert answers.running(sid) is None
