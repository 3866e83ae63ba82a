"""The chat page in a real browser against the real server whose LLM is the fake one."""

import asyncio
import time

import pytest

from tests.chat.fake_llm import FakeLLMThread
from tests.conftest import PASSWORD
from tests.e2e.conftest import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def fake_llm():
    # Slow enough (0.1 s a token) to watch tokens arrive and to reload mid-answer.
    with FakeLLMThread(delay=0.1) as fake:
        yield fake


@pytest.fixture(scope="module")
def chat_server_url(django_db_setup, tmp_path_factory, fake_llm):
    """Like live_server_url, but with AUTOBOT_LLM_* pointing at the fake LLM."""
    env = {"AUTOBOT_LLM_PROVIDER": "ollama", "AUTOBOT_LLM_BASE_URL": fake_llm.url, "AUTOBOT_LLM_MODEL": "fake-small"}
    with run_server(tmp_path_factory.mktemp("chat-var"), env) as url:
        yield url


def login(page, url, user):
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", user.get_username())
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_tokens_arrive_live_and_a_reload_mid_answer_keeps_going(page, owner, chat_server_url, artifact_path):
    login(page, chat_server_url, owner)
    page.goto(f"{chat_server_url}/chat/")
    page.click("#new-session")
    page.wait_for_selector("#conn-state.ok")

    page.fill("#prompt", "alpha beta gamma delta epsilon zeta eta theta")
    page.press("#prompt", "Enter")

    # Tokens show up one by one in a streaming bubble before the answer is complete.
    streaming = page.locator(".msg.assistant.streaming .body")
    streaming.wait_for()
    page.wait_for_function(
        "() => { const b = document.querySelector('.msg.assistant.streaming .body');"
        " return b && b.textContent.startsWith('Echo: alpha') && !b.textContent.includes('theta'); }"
    )
    assert page.locator("#stop").is_visible()

    # Reload mid-answer: the partial answer comes back and keeps streaming to the end.
    page.reload()
    done = page.locator(".msg.assistant.complete .body")
    done.wait_for(timeout=15000)
    assert done.inner_text() == "Echo: alpha beta gamma delta epsilon zeta eta theta"
    assert page.locator(".msg.user .body").inner_text() == "alpha beta gamma delta epsilon zeta eta theta"
    assert page.locator("#stop").is_hidden()
    assert "alpha beta" in page.locator("#session-list").inner_text()  # the title came from the message
    page.screenshot(path=artifact_path("chat.png"), full_page=True)


def test_stop_button_cancels_the_answer(page, owner, chat_server_url):
    login(page, chat_server_url, owner)
    page.goto(f"{chat_server_url}/chat/")
    page.click("#new-session")
    page.wait_for_selector("#conn-state.ok")
    page.fill("#prompt", " ".join(f"word{n}" for n in range(60)))
    page.press("#prompt", "Enter")
    page.locator(".msg.assistant.streaming").wait_for()

    page.click("#stop")

    stopped = page.locator(".msg.assistant.cancelled")
    stopped.wait_for(timeout=10000)
    assert "stopped" in stopped.locator(".meta").inner_text()
    assert "word59" not in stopped.inner_text()


def test_an_answer_that_ends_while_the_page_is_cut_off_shows_whole_after_reconnecting(page, owner, chat_server_url,
                                                                                       fake_llm, cable):
    from chat.models import ChatMessage

    network = cable(chat_server_url)
    login(page, network.url, owner)
    page.goto(f"{network.url}/chat/")
    page.click("#new-session")
    page.wait_for_selector("#conn-state.ok")
    fake_llm.pause_after = 2  # "Echo:" and " alpha" arrive, then the answer waits for `resume`
    try:
        page.fill("#prompt", "alpha beta gamma")
        page.press("#prompt", "Enter")
        page.wait_for_function(
            "document.querySelector('.msg.assistant.streaming .body')?.textContent === 'Echo: alpha'")

        # The network drops: the page's socket closes and its reconnects fail for now.
        network.unplug()
        page.wait_for_selector("#conn-state.warn")
        # The answer ends on the server meanwhile; no frame can tell the page.
        fake_llm.loop.call_soon_threadsafe(fake_llm.resume.set)
        answer = ChatMessage.objects.filter(session__owner=owner, role="assistant", status="complete")
        deadline = time.monotonic() + 15
        while not answer.exists():  # another process stores it: there is nothing to wait on but the row
            assert time.monotonic() < deadline, "the answer was not stored"
            time.sleep(0.1)
    finally:
        fake_llm.pause_after = None
        fake_llm.resume = asyncio.Event()

    network.plug()
    page.wait_for_selector("#conn-state.ok", timeout=20000)  # reconnected (backoff: at most 10 s)
    page.locator(".msg.assistant.complete").wait_for(timeout=10000)
    assert page.locator(".msg.assistant .body").all_inner_texts() == ["Echo: alpha beta gamma"]
    assert page.locator(".msg.assistant.streaming").count() == 0
    assert page.locator("#stop").is_hidden() and page.locator("#send").is_enabled()
    assert page.locator("#banner").is_hidden()

    # And the chat goes on: the next question is sent and answered.
    page.fill("#prompt", "delta epsilon")
    page.press("#prompt", "Enter")
    page.wait_for_function("document.querySelectorAll('.msg.assistant.complete').length === 2", timeout=15000)
    assert page.locator(".msg.assistant.complete .body").all_inner_texts() == [
        "Echo: alpha beta gamma", "Echo: delta epsilon"]


def test_messages_stored_while_the_page_is_cut_off_show_after_reconnecting_however_many(page, owner,
                                                                                         chat_server_url, cable):
    """Another tab or a REST client went on with the chat while this page was cut off: back, it
    shows all of it (more than one page of the API's), with a banner while it may be behind."""
    import json
    import urllib.request

    from chat.models import ChatMessage, ChatSession
    from tests.conftest import make_token

    network = cable(chat_server_url)
    login(page, network.url, owner)
    page.goto(f"{network.url}/chat/")
    page.click("#new-session")
    page.wait_for_selector("#conn-state.ok")
    page.fill("#prompt", "first")
    page.press("#prompt", "Enter")
    page.locator(".msg.assistant.complete").wait_for(timeout=15000)
    assert page.locator("#stale").is_hidden()

    network.unplug()
    page.locator("#stale").wait_for()
    assert "out of date" in page.locator("#stale").inner_text()
    session = ChatSession.objects.get(owner=owner)
    ChatMessage.objects.bulk_create([ChatMessage(session=session, role="user" if n % 2 == 0 else "assistant",
                                                 content=f"later {n}") for n in range(250)])
    # And a question answered by the server meanwhile, sent straight to it (not through the cable).
    request = urllib.request.Request(
        f"{chat_server_url}/api/chat/sessions/{session.pk}/messages", method="POST",
        data=json.dumps({"content": "from another tab"}).encode(),
        headers={"Authorization": f"Bearer {make_token(owner)}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
    network.plug()

    page.wait_for_selector("#conn-state.ok", timeout=20000)  # reconnected (backoff: at most 10 s)
    page.wait_for_function("document.querySelectorAll('.msg').length === 254", timeout=15000)
    page.locator("#stale").wait_for(state="hidden")
    texts = page.locator(".msg .body").all_inner_texts()
    assert texts[:3] == ["first", "Echo: first", "later 0"]
    assert texts[-3:] == ["later 249", "from another tab", "Echo: from another tab"]
    assert page.locator("#send").is_enabled() and page.locator("#banner").is_hidden()
