"""The built-in agents answer through the bus, acting as the requesting user."""

import pytest

from agents import services
from agents.bus import AgentError
from agents.protocol import MessageType

pytestmark = pytest.mark.django_db(transaction=True)


async def ask(user, recipient, action, data):
    bus = await services.get_bus()
    message = bus.message(MessageType.REQUEST, action, data, recipient_id=recipient,
                          sender_id=f"user:{user.get_username()}")
    return await bus.request_message(message, timeout=20)


async def test_knowledge_searches_as_the_requesting_user(owner, stranger):
    from knowledge.services import entry_create

    await entry_create(user=owner, title="Backup runbook", content="Nightly backups run rsync to the vault.")
    found = await ask(owner, "knowledge", "search", {"q": "backups"})
    assert found.header.sender_id == "knowledge"
    assert found.payload.data["results"][0]["title"] == "Backup runbook"
    assert (await ask(stranger, "knowledge", "search", {"q": "backups"})).payload.data["count"] == 0


async def test_knowledge_is_reachable_by_capability(owner):
    bus = await services.get_bus()
    answer = await bus.request("search", "search", {"q": "anything"}, sender_id=f"user:{owner.get_username()}")
    assert answer.header.sender_id == "knowledge"


async def test_terminal_runs_under_restricted_policy_as_the_user(staff):
    from terminal.models import CommandRecord

    ran = (await ask(staff, "terminal", "run", {"command": "echo agents-ok"})).payload.data
    assert ran["exit_code"] == 0 and "agents-ok" in ran["output"] and ran["blocked"] is False
    blocked = (await ask(staff, "terminal", "run", {"command": "mkfs.ext4 /dev/autobot-test-none"})).payload.data
    assert blocked["blocked"] is True and blocked["exit_code"] is None
    record = await CommandRecord.objects.aget(pk=blocked["record_id"])
    assert record.user_id == staff.pk


async def test_terminal_refuses_users_without_the_permission(owner):
    with pytest.raises(AgentError) as caught:
        await ask(owner, "terminal", "run", {"command": "echo hi"})
    assert caught.value.code == "terminal_forbidden"


async def test_chat_answers_one_shot(owner):
    answer = (await ask(owner, "chat", "complete", {"prompt": "hello?"})).payload.data
    assert answer["content"] and "model" in answer


@pytest.mark.parametrize(
    ("recipient", "action", "data", "code"),
    [
        ("knowledge", "dance", {}, "unknown_action"),
        ("knowledge", "search", {"q": 5}, "invalid_input"),
        ("knowledge", "search", {"q": "x", "limit": "ten"}, "invalid_input"),
        ("terminal", "run", {}, "invalid_input"),
        ("chat", "complete", {"prompt": ""}, "invalid_input"),
    ],
)
async def test_bad_requests_to_builtins_get_an_error(owner, recipient, action, data, code):
    with pytest.raises(AgentError) as caught:
        await ask(owner, recipient, action, data)
    assert caught.value.code == code


async def test_a_builtin_will_not_act_for_an_unknown_sender(owner):
    bus = await services.get_bus()
    message = bus.message(MessageType.REQUEST, "search", {"q": "x"}, recipient_id="knowledge", sender_id="ghost")
    with pytest.raises(AgentError) as caught:
        await bus.request_message(message)
    assert caught.value.code == "forbidden"
