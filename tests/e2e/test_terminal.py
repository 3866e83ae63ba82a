"""The terminal page in a real browser against the real daphne server and a real shell."""

import pytest

from tests.conftest import PASSWORD

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
    page.wait_for_selector("#term-latest:has-text('Blocked (DANGEROUS)')", timeout=20000)
    wait_for_screen(page, "autobot: blocked")
    page.screenshot(path=artifact_path("terminal.png"), full_page=True)

    page.reload()
    page.wait_for_selector("#term-app[data-state=connected]", timeout=20000)
    assert page.evaluate("location.hash.slice(1)") == session_id
    assert [s["id"] for s in live_sessions(page, owner.get_username())] == [session_id]  # no second shell
    wait_for_screen(page, "hello")  # replayed from the same live session
    type_line(page, "echo again-$((2+2))")
    wait_for_screen(page, "again-4")

    page.goto(f"{live_server_url}/terminal/sessions/{session_id}/replay/")
    page.wait_for_selector("#player .ap-player", timeout=20000)


def live_sessions(page, username):
    """The user's live sessions, as the REST API reports them to the logged-in page."""
    data = page.evaluate("fetch('/api/terminal/sessions?status=live&limit=200').then((r) => r.json())")
    return [s for s in data["items"] if s["owner"] == username]


def session_status(page, session_id):
    return page.evaluate(f"fetch('/api/terminal/sessions/{session_id}').then((r) => r.json())")["status"]


def open_terminal(page, url):
    page.goto(f"{url}/terminal/")
    page.wait_for_selector("#term-app[data-state=connected]", timeout=20000)
    page.wait_for_selector("#new-session-button:enabled", timeout=20000)
    return page.evaluate("location.hash.slice(1)")


def wait_for_new_session(page, old_id):
    page.wait_for_function(f"location.hash.slice(1) !== {old_id!r}", timeout=20000)
    page.wait_for_selector("#term-app[data-state=connected]", timeout=20000)
    page.wait_for_selector("#new-session-button:enabled", timeout=20000)
    return page.evaluate("location.hash.slice(1)")


def test_new_session_straight_after_arrival_replaces_the_unused_session(logged_in_page, staff, live_server_url):
    page = logged_in_page(staff)
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    first = open_terminal(page, live_server_url)
    assert page.get_attribute("#term-app", "data-level") == "RESTRICTED"
    assert page.is_visible("#new-hint")

    page.select_option("#new-level", "STANDARD")
    page.dblclick("#new-session-button")  # the second click must not open a second session
    second = wait_for_new_session(page, first)

    live = live_sessions(page, staff.get_username())
    assert [(s["id"], s["security_level"]) for s in live] == [(second, "STANDARD")]
    assert session_status(page, first) == "ended"
    page.wait_for_selector("#term-latest:has-text('unused RESTRICTED session')")
    assert page.is_hidden("#new-hint")

    page.reload()
    page.wait_for_selector("#term-app[data-state=connected]", timeout=20000)
    assert page.evaluate("location.hash.slice(1)") == second
    assert [s["id"] for s in live_sessions(page, staff.get_username())] == [second]
    assert script_errors == []


def test_new_session_keeps_a_session_the_user_has_typed_into(logged_in_page, owner, live_server_url):
    grant(owner)
    page = logged_in_page(owner)
    first = open_terminal(page, live_server_url)
    wait_for_screen(page, "@autobot:")
    type_line(page, "echo kept-$((3+4))")
    wait_for_screen(page, "kept-7")
    assert page.is_hidden("#new-hint")

    page.click("#new-session-button")
    second = wait_for_new_session(page, first)

    assert {s["id"] for s in live_sessions(page, owner.get_username())} == {first, second}
    page.wait_for_selector(f"#session-list li[data-id='{first}'] button:has-text('Resume')")


def test_arrival_never_attaches_staff_to_someone_elses_session(browser, logged_in_page, owner, staff, live_server_url):
    grant(owner)
    owners_page = logged_in_page(owner)
    owners_session = open_terminal(owners_page, live_server_url)

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        staff_page = context.new_page()
        staff_page.goto(f"{live_server_url}/accounts/login/")
        staff_page.fill("input[name=username]", staff.get_username())
        staff_page.fill("input[name=password]", PASSWORD)
        staff_page.click("button[type=submit]")
        staff_page.wait_for_url(f"{live_server_url}/")
        staffs_session = open_terminal(staff_page, live_server_url)

        assert staffs_session != owners_session
        assert [s["id"] for s in live_sessions(staff_page, staff.get_username())] == [staffs_session]
        assert [s["id"] for s in live_sessions(owners_page, owner.get_username())] == [owners_session]
    finally:
        context.close()


def test_a_user_without_the_permission_sees_a_refusal(logged_in_page, stranger, live_server_url):
    page = logged_in_page(stranger)
    response = page.goto(f"{live_server_url}/terminal/")
    assert response.status == 403
    assert "permission" in page.locator("main").inner_text()
