"""The dashboard says what is set up and where things are; API tokens are managed in the app."""

import pytest

from tests.e2e.conftest import fits_width

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_the_dashboard_says_what_is_configured_links_counts_and_gets_you_started(logged_in_page, owner,
                                                                                live_server_url, artifact_path):
    page = logged_in_page(owner)
    setup = page.inner_text("#setup")
    assert "Model provider" in setup and "AUTOBOT_LLM_PROVIDER" in setup  # the browser-test server has none
    assert "Redis" in setup and "REDIS_URL" in setup
    assert "Sandbox" in setup
    assert page.get_attribute("#counts a:has-text('knowledge entries')", "href") == "/knowledge/"
    assert page.get_attribute("#counts a:has-text('api tokens')", "href") == "/tokens/"
    assert page.locator("#counts a[href^='/admin/']").count() == 0  # not staff: no links into the admin
    assert page.is_visible("#getting-started a:has-text('Create a note')")
    assert page.get_attribute("link[rel=icon]", "href").endswith("favicon.svg")
    page.screenshot(path=artifact_path("dashboard.png"), full_page=True)

    page.click("#getting-started-dismiss")
    page.reload()
    assert page.is_hidden("#getting-started")


def test_tokens_are_created_shown_once_listed_and_revoked(logged_in_page, owner, live_server_url, artifact_path):
    page = logged_in_page(owner)
    page.click("nav a:has-text('Tokens')")
    page.wait_for_selector("#token-rows td:has-text('No tokens yet')")
    page.fill("#token-form input[name=name]", "backup job")
    page.select_option("#token-form select[name=expires_days]", "30")
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#token-new:visible")
    raw = page.inner_text("#token-raw").strip()
    assert len(raw) > 20
    row = page.locator("#token-rows tr", has_text="backup job")
    assert "active" in row.inner_text().lower() and raw not in page.inner_text("#token-rows")
    page.screenshot(path=artifact_path("tokens.png"), full_page=True)

    # The token works against the API; minting another with it is refused with the reason.
    status = page.evaluate("(raw) => fetch('/api/me', {credentials: 'omit', headers: {Authorization: `Bearer ${raw}`}})"
                           ".then((r) => r.status)", raw)
    assert status == 200
    refusal = page.evaluate("(raw) => fetch('/api/tokens', {method: 'POST', credentials: 'omit', headers: "
                            "{Authorization: `Bearer ${raw}`, 'Content-Type': 'application/json'}, body: '{}'})"
                            ".then((r) => r.json())", raw)
    assert refusal["code"] == "session_required" and "browser session" in refusal["detail"]

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button:has-text('Revoke')").click()
    page.wait_for_selector("#token-rows tr:has-text('backup job') .badge:has-text('revoked')")
    status = page.evaluate("(raw) => fetch('/api/me', {credentials: 'omit', headers: {Authorization: `Bearer ${raw}`}})"
                           ".then((r) => r.status)", raw)
    assert status == 401


def test_the_api_docs_link_back_to_the_app(logged_in_page, owner, live_server_url):
    page = logged_in_page(owner)
    page.goto(f"{live_server_url}/api/docs")
    page.click("nav.autobot-back a:has-text('AutoBot')")
    page.wait_for_url(f"{live_server_url}/")


@pytest.mark.parametrize("path", ["/", "/tokens/", "/knowledge/", "/files/", "/agents/"])
def test_pages_fit_a_phone(phone_page, owner, live_server_url, artifact_path, path):
    page = phone_page(live_server_url, owner)
    page.goto(f"{live_server_url}{path}")
    page.wait_for_load_state("networkidle")
    assert fits_width(page), path
    # The title shows whole: not cut off, not squeezed to a letter per line.
    assert page.evaluate("(() => { const h = document.querySelector('h1');"
                         " return h.scrollWidth <= h.clientWidth + 1 && h.getBoundingClientRect().height < 80; })()")
    name = path.strip("/") or "dashboard"
    page.screenshot(path=artifact_path(f"{name}-390.png"), full_page=True)


def test_the_login_page_fits_a_phone(browser, live_server_url, artifact_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(f"{live_server_url}/accounts/login/")
        assert fits_width(page) and page.is_visible("button[type=submit]")
        page.screenshot(path=artifact_path("login-390.png"), full_page=True)
    finally:
        context.close()


def test_the_review_screens_open_on_a_phone(phone_page, staff, live_server_url, artifact_path):
    page = phone_page(live_server_url, staff)
    page.goto(f"{live_server_url}/admin/terminal/commandrecord/")
    page.wait_for_selector("#changelist")
    assert fits_width(page)
    page.screenshot(path=artifact_path("admin-commands-390.png"), full_page=True)


def test_a_read_only_token_is_made_and_shown_on_the_tokens_page(logged_in_page, owner, live_server_url):
    page = logged_in_page(owner)
    page.goto(f"{live_server_url}/tokens/")
    page.wait_for_selector("#token-rows td:has-text('No tokens yet')")
    page.fill("#token-form input[name=name]", "dashboard")
    page.select_option("#token-form select[name=scope]", "read")
    page.click("#token-form button[type=submit]")
    page.wait_for_selector("#token-new:visible")
    raw = page.inner_text("#token-raw").strip()
    row = page.locator("#token-rows tr", has_text="dashboard")
    row.locator("td:has-text('read-only')").wait_for()
    refusal = page.evaluate("(raw) => fetch('/api/terminal/sessions', {method: 'POST', credentials: 'omit', headers: "
                            "{Authorization: `Bearer ${raw}`, 'Content-Type': 'application/json'}, body: '{}'})"
                            ".then((r) => r.json())", raw)
    assert refusal["code"] == "read_only_token"
