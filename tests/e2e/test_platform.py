import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_login_shows_the_dashboard_and_navigation(logged_in_page, owner, live_server_url, artifact_path):
    page = logged_in_page(owner)
    assert page.locator("h1").inner_text() == "Dashboard"
    nav = page.locator("nav.nav").inner_text()
    for item in ("Dashboard", "Chat", "Terminal", "Knowledge", "Files", "Agents"):
        assert item in nav
    assert "ok" in page.locator(".card h2 .badge").first.inner_text().lower()
    page.screenshot(path=artifact_path("dashboard.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 800})
    page.screenshot(path=artifact_path("dashboard-phone.png"), full_page=True)
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{live_server_url}/accounts/login/")


def test_wrong_password_shows_an_error(page, owner, live_server_url):
    page.goto(f"{live_server_url}/accounts/login/")
    page.fill("input[name=username]", "owner")
    page.fill("input[name=password]", "nope")
    page.click("button[type=submit]")
    assert "didn't match" in page.locator("[role=alert]").inner_text()


def test_admin_login_goes_through_the_audited_login_page(page, staff, live_server_url):
    page.goto(f"{live_server_url}/admin/")
    assert page.url.startswith(f"{live_server_url}/accounts/login/")
