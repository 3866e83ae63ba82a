"""Every page carries the Content-Security-Policy: scripts from our origin only, never framed."""

import pytest

pytestmark = pytest.mark.django_db

PAGES = ["/", "/chat/", "/terminal/", "/knowledge/", "/files/", "/agents/", "/tokens/", "/admin/",
         "/admin/terminal/commandrecord/", "/api/docs"]


def directives(response) -> dict[str, str]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize("url", PAGES)
def test_every_page_forbids_inline_script_and_framing(client, staff, url):
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 200, url
    policy = directives(response)
    assert policy["script-src"] == "script-src 'self'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert policy["object-src"] == "object-src 'none'"


def test_the_login_page_carries_it_before_sign_in(client):
    response = client.get("/accounts/login/")
    assert directives(response)["script-src"] == "script-src 'self'"


def test_only_the_replay_page_may_compile_webassembly(client, staff):
    from terminal.models import TerminalSession

    session = TerminalSession.objects.create(owner=staff, title="recorded", status="ended")
    client.force_login(staff)
    replay = directives(client.get(f"/terminal/sessions/{session.pk}/replay/"))
    assert replay["script-src"] == "script-src 'self' 'wasm-unsafe-eval'"
    assert replay["frame-ancestors"] == "frame-ancestors 'none'"
    assert directives(client.get("/terminal/"))["script-src"] == "script-src 'self'"
