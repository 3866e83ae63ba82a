"""The agents page in a real browser: the live registry and a request to the built-in knowledge agent."""

import json
import urllib.request

import pytest

from tests.e2e.test_chat import login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_request_to_the_knowledge_agent_shows_the_answer(logged_in_page, owner, live_server_url, artifact_path):
    page = logged_in_page(owner)
    page.goto(f"{live_server_url}/agents/")
    # Something to find, stored through the knowledge API as this user.
    created = page.evaluate(
        """async () => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const r = await fetch('/api/knowledge/entries', {method: 'POST', credentials: 'same-origin',
              headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
              body: JSON.stringify({title: 'Backup runbook',
                                    content: 'Nightly backups run rsync to the vault at 02:00.'})});
            return r.status;
        }"""
    )
    assert created == 201

    # The registry arrives over the feed WebSocket, with a green dot for the built-in.
    page.wait_for_selector("tr[data-agent='knowledge'] .dot[data-status='online']")
    page.fill("#send-recipient", "knowledge")
    page.fill("#send-action", "search")
    page.fill("#send-data", json.dumps({"q": "backups"}))
    page.click("#send-button")
    page.wait_for_selector("#send-result:not([hidden])")
    answer = json.loads(page.locator("#send-response").text_content())  # behind the "Raw envelope" toggle
    assert "Backup runbook" in page.inner_text("#send-readable")
    assert answer["header"]["message_type"] == "RESPONSE"
    assert answer["header"]["sender_id"] == "knowledge"
    assert answer["payload"]["data"]["results"][0]["title"] == "Backup runbook"
    # The live feed shows the answered request.
    page.wait_for_selector("#message-rows .badge:has-text('answered')")
    page.screenshot(path=artifact_path("agents.png"), full_page=True)


def test_a_form_per_builtin_action_answers_readably_with_the_envelope_behind_a_toggle(logged_in_page, owner,
                                                                                     live_server_url, artifact_path):
    page = logged_in_page(owner)
    page.goto(f"{live_server_url}/agents/")
    forms = page.locator(".action-form")
    actions = {(f.get_attribute("data-agent"), f.get_attribute("data-action")) for f in forms.all()}
    assert {("knowledge", "search"), ("terminal", "run"), ("chat", "complete")} <= actions

    page.evaluate(
        """async () => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            await fetch('/api/knowledge/entries', {method: 'POST', credentials: 'same-origin',
              headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
              body: JSON.stringify({title: 'Tape rotation', content: 'Tapes rotate every Friday.'})});
        }"""
    )
    search = page.locator(".action-form[data-agent=knowledge][data-action=search]")
    search.locator("input[name=q]").fill("tapes rotate")
    search.locator("button[type=submit]").click()
    answer = search.locator(".action-answer")
    answer.locator(".readable li:has-text('Tape rotation')").wait_for(timeout=20000)
    assert answer.locator("details.raw").get_attribute("open") is None  # the envelope is behind a toggle
    assert not answer.locator("details.raw pre").is_visible()
    answer.locator("details.raw summary").click()
    assert json.loads(answer.locator("details.raw pre").inner_text())["header"]["sender_id"] == "knowledge"
    page.screenshot(path=artifact_path("agents-actions.png"), full_page=True)


def ask_knowledge(server_url: str, token: str, q: str) -> str:
    """A REQUEST to the built-in knowledge agent, straight to the server; its message id (the answer's
    correlation id)."""
    body = {"header": {"message_type": "REQUEST", "recipient_id": "knowledge"},
            "payload": {"action": "search", "data": {"q": q}}}
    request = urllib.request.Request(f"{server_url}/api/agents/messages?wait=true&timeout=10",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.load(response)["header"]["correlation_id"]


def test_messages_sent_while_the_feed_was_down_appear_after_it_reconnects(page, owner, live_server_url, cable,
                                                                          token_for):
    network = cable(live_server_url)
    login(page, network.url, owner)
    page.goto(f"{network.url}/agents/")
    page.wait_for_selector("#feed-state:text-is('live')")
    token = token_for(owner)
    before = ask_knowledge(live_server_url, token, "before")
    page.wait_for_selector(f"#message-rows tr[data-id='{before}']")  # live, over the feed

    # The network drops; a message is sent and answered meanwhile, and no frame can tell the page.
    network.unplug()
    page.wait_for_selector("#feed-state:text-is('reconnecting…')")
    missed = ask_knowledge(live_server_url, token, "missed")

    network.plug()
    page.wait_for_selector("#feed-state:text-is('live')", timeout=20000)  # backoff: at most 10 s
    page.wait_for_selector(f"#message-rows tr[data-id='{missed}'] .badge:has-text('answered')")
    rows = page.locator("#message-rows tr").evaluate_all("rows => rows.map((row) => row.dataset.id)")
    assert rows.index(missed) < rows.index(before)  # newest first


def broadcast(server_url: str, token: str, action: str) -> str:
    """A BROADCAST from the token's user, straight to the server (logged, nothing waits): its message id."""
    body = {"header": {"message_type": "BROADCAST"}, "payload": {"action": action}}
    request = urllib.request.Request(f"{server_url}/api/agents/messages", data=json.dumps(body).encode(),
                                     method="POST", headers={"Authorization": f"Bearer {token}",
                                                             "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.load(response)["message_id"]


def test_every_message_sent_during_a_long_drop_appears_after_it_reconnects(page, owner, live_server_url, cable,
                                                                           token_for):
    """More messages than one read of the newest rows holds (30, what the page read before the
    cursor): all of them appear, each once, newest first."""
    network = cable(live_server_url)
    login(page, network.url, owner)
    page.goto(f"{network.url}/agents/")
    page.wait_for_selector("#feed-state:text-is('live')")
    token = token_for(owner)
    before = broadcast(live_server_url, token, "before")
    page.wait_for_selector(f"#message-rows tr[data-id='{before}']")

    network.unplug()
    page.wait_for_selector("#feed-state:text-is('reconnecting…')")
    missed = [broadcast(live_server_url, token, f"missed-{n}") for n in range(75)]  # two pages of 50

    network.plug()
    page.wait_for_selector("#feed-state:text-is('live')", timeout=20000)  # backoff: at most 10 s
    page.wait_for_selector(f"#message-rows tr[data-id='{missed[-1]}']")
    page.wait_for_function("n => document.querySelectorAll('#message-rows tr').length >= n", arg=len(missed) + 1)
    rows = page.locator("#message-rows tr").evaluate_all("rows => rows.map((row) => row.dataset.id)")
    assert rows == [*reversed(missed), before]  # every one, once, newest first


def test_the_log_shows_though_the_feed_cannot_open(logged_in_page, owner, live_server_url, token_for):
    """The page reads the log when it loads, not only when its feed socket opens."""
    sent = broadcast(live_server_url, token_for(owner), "before the page")
    page = logged_in_page(owner)
    page.route_web_socket("**/ws/agents/feed/", lambda socket: socket.close())  # never reaches the server
    page.goto(f"{live_server_url}/agents/")
    page.wait_for_selector(f"#message-rows tr[data-id='{sent}']")
    assert page.inner_text("#feed-state") != "live"
