"""The operator on the chat page, in a real browser against the real server and the fake model."""

import json
import os

import pytest

from tests.chat.fake_llm import FakeLLMThread
from tests.e2e.test_chat import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WRITE = {"path": ".profile", "content": "export EDITOR=vim\n"}


def script(body):
    """Write a dotfile (HIGH: waits for approval) first; once a tool result is back, answer."""
    if any(m.get("role") == "tool" for m in body["messages"]):
        return {"text": "Your editor is set."}
    return {"text": "Setting it.", "tool_calls": [{"id": "w1", "name": "files_write", "arguments": WRITE}]}


@pytest.fixture(scope="module")
def operator_url(django_db_setup, tmp_path_factory):
    from tests.e2e.conftest import run_server

    with FakeLLMThread() as fake:
        fake.script = script
        env = {"AUTOBOT_LLM_PROVIDER": "openai", "AUTOBOT_LLM_BASE_URL": fake.url, "AUTOBOT_LLM_MODEL": "fake-large"}
        var = tmp_path_factory.mktemp("operator-var")
        with run_server(var, env) as url:
            yield url, var


def test_a_risky_call_shows_its_rating_and_runs_once_the_owner_approves(page, owner, operator_url, artifact_path):
    url, var = operator_url
    login(page, url, owner)
    page.goto(f"{url}/chat/")
    page.click("#new-session")
    page.wait_for_selector("#conn-state.ok")
    assert page.locator("#use-tools").is_checked()

    page.fill("#prompt", "set my editor to vim")
    page.press("#prompt", "Enter")

    call = page.locator(".tool-call.awaiting_approval")
    call.wait_for(timeout=15000)
    assert call.locator(".tool-name").inner_text() == "files_write"
    assert call.locator(".tool-risk").inner_text() == "HIGH"
    assert json.loads(call.locator(".tool-args").inner_text()) == WRITE
    assert "write 18 bytes to .profile" in call.locator(".tool-command").inner_text()
    page.screenshot(path=artifact_path("operator-approval.png"))
    assert not os.path.exists(var / "files" / owner.get_username() / ".profile")

    call.get_by_role("button", name="Approve").click()
    page.locator(".msg.assistant.complete").wait_for(timeout=15000)
    done = page.locator(".msg.assistant.complete .tool-call.done")
    assert done.locator(".tool-status").inner_text() == "done"
    assert "+export EDITOR=vim" in done.locator(".tool-output").text_content()
    assert "Your editor is set." in page.locator(".msg.assistant.complete .body").inner_text()
    assert (var / "files" / owner.get_username() / ".profile").read_text() == WRITE["content"]
