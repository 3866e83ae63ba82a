"""autobot/layers.py: the in-memory channel layer that cleans expired messages once a second."""

import asyncio

import pytest
from django.conf import settings

from autobot import layers
from autobot.workers import single_process


def test_make_run_uses_it_and_still_counts_as_one_process():
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "autobot.layers.InMemoryChannelLayer"
    assert single_process()


async def test_group_messages_arrive_in_order_to_every_member():
    layer = layers.InMemoryChannelLayer()
    first, second = await layer.new_channel(), await layer.new_channel()
    for channel in (first, second):
        await layer.group_add("chat.one", channel)
    for n in range(5):
        await layer.group_send("chat.one", {"type": "chat.token", "n": n})
    for channel in (first, second):
        assert [(await layer.receive(channel))["n"] for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_an_expired_message_is_dropped_and_its_channel_leaves_its_groups(monkeypatch):
    monkeypatch.setattr(layers, "CLEAN_SECONDS", 0.2)
    layer = layers.InMemoryChannelLayer(expiry=0.1)
    gone, alive = await layer.new_channel(), await layer.new_channel()
    for channel in (gone, alive):
        await layer.group_add("chat.two", channel)
    await layer.group_send("chat.two", {"type": "chat.token", "n": 1})
    assert (await layer.receive(alive))["n"] == 1  # `gone` never reads its copy

    await asyncio.sleep(0.3)  # past the message's expiry and the clean interval
    await layer.group_send("chat.two", {"type": "chat.token", "n": 2})
    assert list(layer.groups["chat.two"]) == [alive]
    assert (await layer.receive(alive))["n"] == 2
    assert gone not in layer.channels


async def test_a_channel_full_of_expired_messages_takes_a_new_one(monkeypatch):
    """Between walks expired messages stay queued; a send that finds the queue full walks at once."""
    from channels.exceptions import ChannelFull

    monkeypatch.setattr(layers, "CLEAN_SECONDS", 60.0)
    layer = layers.InMemoryChannelLayer(expiry=0.1, capacity=2)
    channel = await layer.new_channel()
    for n in range(2):
        await layer.send(channel, {"type": "x", "n": n})
    await asyncio.sleep(0.2)  # both expired, not yet walked away
    await layer.send(channel, {"type": "x", "n": 2})
    assert (await layer.receive(channel))["n"] == 2

    for n in range(2):  # live messages still fill it
        await layer.send(channel, {"type": "x", "n": n})
    with pytest.raises(ChannelFull):
        await layer.send(channel, {"type": "x", "n": 9})
