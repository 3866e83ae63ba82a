"""The terminal page in a real browser against the real daphne server and a real shell."""

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SCREEN = "document.querySelector('#terminal .xterm-rows')?.innerText || ''"


def grant(user):
    from django.contrib.auth.models import Permission

    user.user_permissions.add(Permission.objects.get(codename="use_terminal", content_type__app_label="terminal"))


def wait_for_screen(page, text):
    page.wait_for_function(f"({SCREEN}).includes({text!r})", timeout=20000)


def type_line(page, line):
    page.locator("#terminal").click()
    page.keyboard.type(line)
    page.keyboard.press("Enter")


def test_echo_block_and_reload_resumes_the_session(logged_in_page, owner, live_server_url, artifact_path):
    grant(owner)
    page = logged_in_page(owner)
    page.goto(f"{live_server_url}/terminal/")
    page.wait_for_selector("#term-app[data-state=connected]", timeout=20000)
    wait_for_screen(page, "@autobot:")
    session_id = page.evaluate("location.hash.slice(1)")
    assert len(session_id) == 36

    type_line(page, "echo hel''lo")
    wait_for_screen(page, "hello")

    type_line(page, "mkfs.ext4 /dev/autobot-test-none")
    page.wait_for_selector("#term-notices li:has-text('Blocked (DANGEROUS)')", timeout=20000)
    wait_for_screen(page, "autobot: blocked")
    page.screenshot(path=artifact_path("terminal.png"), full_page=True)

    page.reload()
    page.wait_for_selector("#term-app[data-state=connected]", timeout=20000)
    assert page.evaluate("location.hash.slice(1)") == session_id
    wait_for_screen(page, "hello")  # replayed from the same live session
    type_line(page, "echo again-$((2+2))")
    wait_for_screen(page, "again-4")

    page.goto(f"{live_server_url}/terminal/sessions/{session_id}/replay/")
    page.wait_for_selector("#player .ap-player", timeout=20000)


def test_a_user_without_the_permission_sees_a_refusal(logged_in_page, stranger, live_server_url):
    page = logged_in_page(stranger)
    response = page.goto(f"{live_server_url}/terminal/")
    assert response.status == 403
    assert "permission" in page.locator("main").inner_text()
