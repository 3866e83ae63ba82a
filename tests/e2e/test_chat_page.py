"""The chat page people expect: type first, copy/regenerate/edit, export, chats by day, phones."""

import json
import re

import pytest

from tests.e2e.conftest import fits_width
from tests.e2e.test_chat import chat_server_url, fake_llm, login  # noqa: F401 — fixtures shared with test_chat

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def ask(page, text):
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def answers(page):
    return page.locator(".msg.assistant.complete .body").all_inner_texts()


def test_typing_before_new_chat_starts_one_and_the_label_is_not_a_model(page, owner, chat_server_url):  # noqa: F811
    login(page, chat_server_url, owner)
    page.goto(f"{chat_server_url}/chat/")
    assert page.inner_text("#conn-state").strip() == "Connection: not connected"
    ask(page, "first words here")
    page.locator(".msg.assistant.complete").wait_for(timeout=15000)
    assert answers(page) == ["Echo: first words here"]
    assert "session=" in page.url
    assert page.inner_text("#conn-state").strip() == "Connection: connected"
    assert "first words" in page.inner_text("#session-list")


def test_copy_regenerate_and_edit_and_resend(page, owner, chat_server_url, artifact_path):  # noqa: F811
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    login(page, chat_server_url, owner)
    page.goto(f"{chat_server_url}/chat/")
    ask(page, "one two")
    page.locator(".msg.assistant.complete").wait_for(timeout=15000)

    page.locator(".msg.assistant button.copy-message").click()
    assert page.evaluate("navigator.clipboard.readText()") == "Echo: one two"

    page.locator(".msg.assistant.last button.regenerate").click()
    page.wait_for_function("document.querySelectorAll('.msg.assistant.complete').length === 2", timeout=15000)
    assert answers(page) == ["Echo: one two", "Echo: one two"]  # the old answer is kept, the new one beside it
    assert page.locator(".msg.assistant button.regenerate:visible").count() == 1  # only on the last answer
    assert page.locator(".msg.user").count() == 1  # the question is not asked twice
    page.reload()
    page.locator(".msg.assistant.complete").nth(1).wait_for(timeout=15000)
    assert page.locator(".msg.user").count() == 1 and answers(page) == ["Echo: one two", "Echo: one two"]

    page.locator(".msg.user.last button.edit").click()
    assert page.input_value("#prompt") == "one two"
    page.fill("#prompt", "one two three")
    page.press("#prompt", "Enter")
    page.wait_for_function("document.querySelectorAll('.msg.assistant.complete').length === 3", timeout=15000)
    assert answers(page)[-1] == "Echo: one two three"
    page.screenshot(path=artifact_path("chat-actions.png"), full_page=True)


def test_export_downloads_markdown_and_json_named_after_the_title_and_date(page, owner, chat_server_url):  # noqa: F811
    login(page, chat_server_url, owner)
    page.goto(f"{chat_server_url}/chat/")
    ask(page, "Deploy checklist please")
    page.locator(".msg.assistant.complete").wait_for(timeout=15000)
    page.wait_for_function("document.getElementById('chat-title').textContent.includes('Deploy')")
    with page.expect_download() as info:
        page.click("#chat-export button[data-format=md]")
    download = info.value
    assert re.fullmatch(r"deploy-checklist-please-\d{4}-\d\d-\d\d\.md", download.suggested_filename)
    assert "Echo: Deploy checklist please" in open(download.path(), encoding="utf-8").read()
    with page.expect_download() as info:
        page.click("#chat-export button[data-format=json]")
    assert info.value.suggested_filename.endswith(".json")
    assert json.load(open(info.value.path(), encoding="utf-8"))


def test_the_chat_list_groups_by_day_with_times(page, owner, chat_server_url):  # noqa: F811
    from chat.models import ChatSession

    old = ChatSession.objects.create(owner=owner, title="last spring")
    ChatSession.objects.filter(pk=old.pk).update(updated="2025-04-02T10:00:00Z")
    ChatSession.objects.create(owner=owner, title="this morning")
    login(page, chat_server_url, owner)
    page.goto(f"{chat_server_url}/chat/")
    page.wait_for_selector("#session-list li.day")
    days = page.locator("#session-list li.day").all_inner_texts()
    assert days[0].lower() == "today" and "2025" in days[-1]
    assert re.search(r"\d\d:\d\d", page.locator("#session-list li[data-id] .when").first.inner_text())


def test_on_a_phone_the_conversation_comes_first_and_chats_are_behind_a_toggle(phone_page, owner, chat_server_url,  # noqa: F811
                                                                              artifact_path):
    page = phone_page(chat_server_url, owner)
    page.goto(f"{chat_server_url}/chat/")
    assert page.is_visible("#prompt") and page.is_hidden("#session-list")
    ask(page, "hello phone")
    page.locator(".msg.assistant.complete").wait_for(timeout=15000)
    assert fits_width(page)
    assert page.evaluate("document.getElementById('chat-title').getBoundingClientRect().width") > 80
    page.screenshot(path=artifact_path("chat-390.png"), full_page=True)
    page.click("#chats-toggle")
    page.wait_for_selector("#session-list li[data-id]")
    assert page.is_hidden("#prompt")
    page.screenshot(path=artifact_path("chat-390-chats.png"), full_page=True)
