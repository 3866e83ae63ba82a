"""Every page still works under the Content-Security-Policy: no violation is reported in the browser."""

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

# Each page and what shows that its script ran.
PAGES = [
    ("/", "h1:has-text('Dashboard')"),
    ("/chat/", "#composer"),
    ("/terminal/", "#term-app[data-state=connected]"),
    ("/knowledge/", "#kb"),
    ("/files/", "#drop-zone"),
    ("/agents/", "#agent-rows"),
    ("/tokens/", "#token-rows"),
    ("/admin/", "#content"),
    ("/admin/terminal/commandrecord/", "#changelist"),
    ("/api/docs", ".swagger-ui .info"),
]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def test_no_page_reports_a_policy_violation(browser, staff, live_server_url, tmp_path):
    from terminal.models import TerminalSession
    from tests.conftest import PASSWORD

    # A recorded session, so the replay page (asciinema-player, WebAssembly inside) plays something.
    cast = tmp_path / "session.cast"
    cast.write_text('{"version": 2, "width": 80, "height": 24}\n[0.1, "o", "hello from the recording\\r\\n"]\n')
    recorded = TerminalSession.objects.create(owner=staff, title="recorded", status="ended", recording_path=str(cast))

    context = browser.new_context(viewport={"width": 1280, "height": 800})  # the policy enforced
    page = context.new_page()
    page.goto(f"{live_server_url}/accounts/login/")
    page.fill("input[name=username]", staff.get_username())
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server_url}/")
    page.add_init_script(RECORD_VIOLATIONS)
    console = []
    page.on("console", lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    pages = [*PAGES, (f"/terminal/sessions/{recorded.pk}/replay/", "#player .ap-player"),
             (f"/admin/terminal/terminalsession/{recorded.pk}/change/", "#content")]
    for path, ready in pages:
        response = page.goto(f"{live_server_url}{path}")
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_selector(ready, timeout=20000)
        page.wait_for_load_state("networkidle") if path != "/terminal/" else None
        assert page.evaluate("window.__csp") == [], path
    assert console == [] and errors == []
    context.close()
