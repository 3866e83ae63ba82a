"""An answer being generated across a restart of the channel layer's Redis: a page that follows it
from another worker gets the whole text, and a Stop sent from another worker is never lost.

A restart empties every group until its holder joins again (autobot/layerwatch.py notices
within AUTOBOT_LAYER_WATCH_SECONDS). Before, in that window: a page that reconnected took the
database's older copy of the answer (the generating worker could not be asked) and the live tokens
that followed left a hole in it; and a Stop went to the empty control group and was lost, the
answer went on to its end. The page on another worker is a channel in the session's group, as a
socket there is; the other worker is a real server process on the same Redis and database."""

import asyncio

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from channels_redis.core import RedisChannelLayer

from autobot import layerwatch
from chat import services
from chat.generation import control_group, group_name
from chat.llm.registry import use_registry
from chat.models import ChatMessage
from tests.chat.conftest import fake_registry
from tests.chat.test_consumers import make_session
from tests.conftest import make_token
from tests.scale.test_layer_restart import emptied, empty, joined

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.timeout(90)]


async def stop_from(worker, token: str, sid: str) -> dict:
    """The Stop, as a REST client sends it, to the other worker."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"http://{worker.address}/api/chat/sessions/{sid}/cancel") as response:
            assert response.status == 200, await response.text()
            return await response.json()


async def started(owner, sid: str, content: str, tokens: int):
    """Ask, and wait until the answer's first ``tokens`` tokens are out; the answer."""
    posted = await services.message_post(user=owner, session_id=sid, content=content, use_knowledge=False,
                                         stream=True)
    for _ in range(tokens):
        assert (await asyncio.wait_for(posted.events.get(), 10))["type"] == "chat.token"
    return posted.answer


async def stored(message_id: int, within: float = 20) -> ChatMessage:
    """The answer once it is no longer streaming."""
    async with asyncio.timeout(within):
        while True:
            message = await ChatMessage.objects.aget(pk=message_id)
            if message.status != ChatMessage.Status.STREAMING:
                return message
            await asyncio.sleep(0.1)


async def test_a_page_that_joins_after_a_restart_gets_the_whole_answer_with_the_next_token(own_redis, owner, llm,
                                                                                             settings):
    settings.LAYER_WATCH_SECONDS = 0.2
    llm.pause_after = 2  # "Echo:" and " one" go out, then the answer waits
    sid = await make_session(owner)
    answer = await started(owner, sid, "one two three", tokens=2)

    await emptied(own_redis)
    # A page on another worker reconnects: it joins the group (its snapshot is the database's copy).
    # Its worker's layer is not this process's: a receiver cancelled here (the answer's control
    # listener, at its end) must not take a message of the page's with it.
    worker = RedisChannelLayer(**settings.CHANNEL_LAYERS["default"]["CONFIG"])
    try:
        page = await worker.new_channel()
        await worker.group_add(group_name(sid), page)
        llm.resume.set()

        first = await asyncio.wait_for(worker.receive(page), 10)
        assert (first["type"], first["offset"], first["data"]) == ("chat.token", 0, "Echo: one two")
        text = first["data"]
        while (event := await asyncio.wait_for(worker.receive(page), 10))["type"] == "chat.token":
            assert event["offset"] <= len(text), (event, text)  # no hole
            text = text[:event["offset"]] + event["data"]
    finally:
        await worker.close_pools()
    assert event["type"] == "chat.done"
    assert text == event["message"]["content"] == "Echo: one two three" == answer.text


async def test_a_stop_sent_before_the_generator_rejoins_its_group_stops_the_answer(own_redis, other_worker, owner,
                                                                                    llm, settings):
    """The model is silent (paused): only the check after the control listener's rejoin can stop it."""
    settings.LAYER_WATCH_SECONDS = 1.0  # the window between the restart and the rejoin
    use_registry(fake_registry(llm.url, read_timeout=60))  # the paused model is silent, not failing
    llm.pause_after = 2
    token = await sync_to_async(make_token)(owner)
    sid = await make_session(owner)
    answer = await started(owner, sid, "one two three", tokens=2)
    await joined(control_group(sid))
    await layerwatch.ready()
    seen = layerwatch.epoch()

    await asyncio.to_thread(empty, own_redis)
    assert await stop_from(other_worker, token, sid) == {"cancelled": True}

    await asyncio.wait_for(layerwatch.restarted_since(seen), 10)
    message = await stored(answer.message_id)
    assert (message.status, message.content) == (ChatMessage.Status.CANCELLED, "Echo: one")


async def test_a_stop_that_no_group_carried_stops_the_answer_between_tokens(own_redis, other_worker, owner, llm,
                                                                           settings):
    """The generator does not notice the restart for a long time (a slow watch): it finds the Stop
    on the answer's row while it writes the text so far."""
    settings.LAYER_WATCH_SECONDS = 600
    llm.tokens = [f"w{n} " for n in range(200)]
    llm.delay = 0.05
    token = await sync_to_async(make_token)(owner)
    sid = await make_session(owner)
    answer = await started(owner, sid, "many words", tokens=1)
    await joined(control_group(sid))

    await asyncio.to_thread(empty, own_redis)
    assert await stop_from(other_worker, token, sid) == {"cancelled": True}

    message = await stored(answer.message_id)
    assert message.status == ChatMessage.Status.CANCELLED
    assert not message.content.endswith("w199 ")
