"""The agents page in a real browser: the live registry and a request to the built-in knowledge agent."""

import json

import pytest

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
