"""The review screens staff read in the admin, in Chromium at 1366 px."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


@pytest.fixture
def reviewed_session(owner, colleague):
    from terminal.models import CommandRecord, TerminalSession

    start = timezone.now() - timedelta(minutes=5)
    session = TerminalSession.objects.create(owner=owner, title="nightly checks", status="ended", created=start,
                                             ended=start + timedelta(minutes=2), end_reason="closed")
    rows = [
        ("echo first", "LOW", False, False, "interactive", 5),
        ("mkfs.ext4 /dev/autobot-test-none", "DANGEROUS", True, False, "interactive", 65),
        ("curl http://127.0.0.1/x | sh", "HIGH", False, True, "execute", 95),
    ]
    for command, risk, blocked, warned, source, after in rows:
        CommandRecord.objects.create(session=session, user=owner, command=command, risk=risk, blocked=blocked,
                                     warned=warned, source=source, security_level="STANDARD",
                                     started=start + timedelta(seconds=after))
    CommandRecord.objects.create(user=colleague, command="uptime", risk="LOW", source="execute",
                                 security_level="RESTRICTED", started=start)
    return session


def test_command_records_read_right_and_fit_1366(logged_in_page, staff, reviewed_session, live_server_url,
                                                 artifact_path):
    page = logged_in_page(staff)
    page.set_viewport_size({"width": 1366, "height": 800})
    page.goto(f"{live_server_url}/admin/terminal/commandrecord/")
    row = page.locator("#result_list tr", has_text="mkfs.ext4")
    assert row.locator(".verdict").inner_text() == "blocked"
    assert "verdict-blocked" in row.locator(".verdict").get_attribute("class")
    assert page.locator("#result_list tr", has_text="echo first").locator(".verdict-allowed").inner_text() == "allowed"
    assert TIME.match(row.locator("td.field-at, th.field-at").inner_text().strip())
    filters = page.locator("#changelist-filter").inner_text().lower()
    for name in ("verdict", "risk", "security level", "source", "session", "started", "user"):
        assert f"by {name}" in filters, name
    assert "typed in the shell" in filters and "api" in filters
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    fits = "document.querySelector('#result_list').scrollWidth <= document.querySelector('.results').clientWidth"
    page.screenshot(path=artifact_path("admin-commands-1366.png"), full_page=True)
    assert page.evaluate(fits)  # every column shows, no sideways scrolling
    page.screenshot(path=artifact_path("admin-commands-1366.png"), full_page=True)

    row.locator("a").first.click()  # the record's own page: every field, to the second, with its moment
    assert "replay from here" in page.locator("#content").inner_text()
    page.go_back()
    page.click("#changelist-filter a:has-text('blocked')")
    assert page.locator("#result_list tbody tr").count() == 1
    page.goto(f"{live_server_url}/admin/terminal/commandrecord/?source=execute&session={reviewed_session.pk}")
    assert page.locator("#result_list tbody tr").count() == 1
    assert "allowed, warned" in page.locator("#result_list tbody tr").inner_text()


def test_a_sessions_page_lists_its_commands_in_order_with_replay_links(logged_in_page, staff, reviewed_session,
                                                                       live_server_url, artifact_path):
    page = logged_in_page(staff)
    page.set_viewport_size({"width": 1366, "height": 800})
    page.goto(f"{live_server_url}/admin/terminal/terminalsession/{reviewed_session.pk}/change/")
    commands = page.locator(".inline-related td.field-command").all_inner_texts()
    assert [c.strip() for c in commands] == ["echo first", "mkfs.ext4 /dev/autobot-test-none",
                                             "curl http://127.0.0.1/x | sh"]
    links = page.locator(".inline-related a:has-text('replay from here')")
    assert [link.get_attribute("href").split("?t=")[1] for link in links.all()] == ["5", "65", "95"]
    page.screenshot(path=artifact_path("admin-session-1366.png"), full_page=True)
    links.nth(1).click()
    page.wait_for_selector("#player .ap-player", timeout=20000)


def test_chat_messages_are_read_only_in_the_admin(logged_in_page, staff, owner, live_server_url):
    from chat.models import ChatMessage, ChatSession

    session = ChatSession.objects.create(owner=owner, title="evidence")
    message = ChatMessage.objects.create(session=session, role="user", content="what ran last night?")
    page = logged_in_page(staff)
    page.goto(f"{live_server_url}/admin/chat/chatmessage/{message.pk}/change/")
    assert "what ran last night?" in page.locator("#content").inner_text()
    assert page.locator("input[type=submit]").count() == 0 and page.locator("textarea").count() == 0
    assert page.goto(f"{live_server_url}/admin/chat/chatmessage/add/").status == 403
    page.goto(f"{live_server_url}/admin/chat/chatsession/{session.pk}/change/")
    assert page.locator("textarea, input[type=submit]").count() == 0
