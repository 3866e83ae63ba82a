"""The terminal page as a person meets it: reloads that never type for you, notices that stay put,
a session list that tells the truth, renaming, and a phone-sized screen."""

import shutil

import pytest

from tests.e2e.conftest import fits_width
from tests.e2e.test_terminal import grant, open_terminal, type_line, wait_for_screen

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

# A program that asks the terminal what real full-screen programs ask (device attributes,
# foreground/background colours, a DECRQM mode report, the cursor position), then swallows the
# answers as vim does, so the live run leaves the prompt clean: echo off before asking (as vim's
# raw mode is; `read -s` alone turns it off only once the read starts, and on a loaded machine the
# answers came before that, were echoed and reached the screen), then read up to the cursor
# report's final R, the last answer (a fixed second was too short).
QUERIES = (r"stty -echo; printf '\e[c\e]10;?\a\e]11;?\a\e[?2$p\e[6n'; read -r -t 20 -d R _answers; stty echo; "
           r"echo asked-$((6*7))")


def history(page, session_id):
    data = page.evaluate(f"fetch('/api/terminal/sessions/{session_id}/history?limit=200').then((r) => r.json())")
    return [item["command"] for item in data["items"]]


def reload_and_wait(page):
    page.reload()
    page.wait_for_selector("#term-app[data-state=connected]", timeout=20000)


def test_reloading_after_programs_that_query_the_terminal_types_nothing(logged_in_page, owner, live_server_url,
                                                                       artifact_path):
    grant(owner)
    page = logged_in_page(owner)
    session_id = open_terminal(page, live_server_url)
    wait_for_screen(page, "@autobot:")
    typed = [QUERIES]
    type_line(page, QUERIES)
    wait_for_screen(page, "asked-42")
    if shutil.which("vim"):
        typed.append("vim -u NONE -N")
        type_line(page, typed[-1])
        page.wait_for_timeout(1500)  # vim draws its screen and asks its questions: no event to wait on
        page.keyboard.type(":q!")
        page.keyboard.press("Enter")

    for _ in range(3):
        reload_and_wait(page)
        wait_for_screen(page, "asked-42")  # the replay arrived and was drawn
    page.wait_for_timeout(500)  # any answer a replay provoked would reach the shell by now
    typed.append("echo ok-$((40+2))")
    type_line(page, typed[-1])
    wait_for_screen(page, "ok-42")
    page.screenshot(path=artifact_path("terminal-after-reloads.png"))

    commands = history(page, session_id)
    assert sorted(commands) == sorted(typed), commands  # nothing the user did not type
    screen = page.evaluate("document.querySelector('#terminal .xterm-rows').innerText")
    assert "rgb:" not in screen and "$y" not in screen


def test_notices_do_not_move_the_terminal_can_be_dismissed_and_survive_a_reload(logged_in_page, owner,
                                                                               live_server_url, artifact_path):
    grant(owner)
    page = logged_in_page(owner)
    open_terminal(page, live_server_url)
    wait_for_screen(page, "@autobot:")
    top = page.evaluate("document.getElementById('terminal').getBoundingClientRect().top")
    for n in range(3):
        type_line(page, f"mkfs.ext4 /dev/autobot-test-none{n}")
        page.wait_for_selector(f"#term-latest:has-text('autobot-test-none{n}')", timeout=20000)
    assert page.evaluate("document.getElementById('terminal').getBoundingClientRect().top") == top
    assert page.inner_text("#notices-toggle") == "Notices (3)"

    reload_and_wait(page)
    page.wait_for_selector("#term-latest:has-text('autobot-test-none2')")
    page.click("#notices-toggle")
    assert page.locator("#term-notices li").count() == 3
    page.screenshot(path=artifact_path("terminal-notices.png"))
    page.locator("#term-notices li", has_text="autobot-test-none1").locator("button.dismiss").click()
    assert page.locator("#term-notices li").count() == 2
    page.click("#notices-close")
    page.click("#term-latest-dismiss")  # the newest goes; the one before it shows
    page.wait_for_selector("#term-latest:has-text('autobot-test-none0')")
    assert page.evaluate("document.getElementById('terminal').getBoundingClientRect().top") == top


def test_the_list_shows_detached_sessions_with_time_left_renames_and_ends(logged_in_page, owner, live_server_url,
                                                                        artifact_path):
    grant(owner)
    page = logged_in_page(owner)
    first = open_terminal(page, live_server_url)
    wait_for_screen(page, "@autobot:")
    type_line(page, "echo keep-me")
    wait_for_screen(page, "keep-me")
    page.click("#new-session-button")  # the page leaves the first session: no socket on it now
    page.wait_for_function(f"location.hash.slice(1) !== {first!r}", timeout=20000)
    page.wait_for_selector("#new-session-button:enabled", timeout=20000)

    item = page.locator(f"#session-list li[data-id='{first}']")
    page.wait_for_function(
        f"document.querySelector(\"#session-list li[data-id='{first}'] .state\")?.innerText.startsWith('detached')",
        timeout=20000,
    )
    assert "ends in 15 min" in item.locator(".state").inner_text()  # the default grace, 900 s

    item.locator("button.rename").click()
    item.locator("input").fill("deploy checks")
    item.locator("button[type=submit]").click()
    page.wait_for_selector(f"#session-list li[data-id='{first}'] .title:has-text('deploy checks')")
    info = page.evaluate(f"fetch('/api/terminal/sessions/{first}').then((r) => r.json())")
    assert info["title"] == "deploy checks"
    page.screenshot(path=artifact_path("terminal-sessions.png"))

    item.locator("button:has-text('End')").click()
    page.wait_for_selector(f"#session-list li[data-id='{first}'] .state:has-text('ended')")
    assert item.locator("button:has-text('Resume')").count() == 0


def test_on_a_phone_the_terminal_comes_first_and_the_list_is_behind_a_toggle(phone_page, owner, live_server_url,
                                                                            artifact_path):
    grant(owner)
    page = phone_page(live_server_url, owner)
    page.goto(f"{live_server_url}/terminal/")
    page.wait_for_selector("#term-app[data-state=connected]", timeout=20000)
    wait_for_screen(page, "@autobot:")
    assert page.is_visible("#terminal") and page.is_hidden("#session-list")
    assert fits_width(page)
    assert page.evaluate("document.getElementById('term-title').getBoundingClientRect().width") > 60
    page.screenshot(path=artifact_path("terminal-390.png"))
    page.click("#sessions-toggle")
    assert page.is_visible("#session-list li")
    page.screenshot(path=artifact_path("terminal-390-sessions.png"))
