"""The knowledge page in a real browser against the real server: add a note, search as you
type, open and edit an entry, drop a file to upload it, crawl a loopback site and watch it."""

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

# The live server (started once per session, after collection) must be allowed to crawl the
# loopback site below; production keeps the default (refused).

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def docs_site(tmp_path):
    """A three-page documentation site on 127.0.0.1."""
    (tmp_path / "index.html").write_text(
        "<html><head><title>Docs home</title></head><body><main><h1>Docs</h1>"
        '<p>Welcome.</p><a href="install.html">Install</a> <a href="tuning.html">Tuning</a></main></body></html>')
    (tmp_path / "install.html").write_text(
        "<html><head><title>Installing</title></head><body><main><h1>Install</h1>"
        '<p>Install the quasar daemon with the package manager.</p><a href="index.html">Home</a></main></body></html>')
    (tmp_path / "tuning.html").write_text(
        "<html><head><title>Tuning</title></head><body><main><h1>Tuning</h1>"
        "<p>Raise the worker count for busy hosts.</p></main></body></html>")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


def test_note_search_edit_upload(logged_in_page, owner, live_server_url, artifact_path):
    page = logged_in_page(owner)
    page.goto(f"{live_server_url}/knowledge/")

    page.fill("#kb-note [name=title]", "Proxy setup")
    page.fill("#kb-note [name=content]", "# Web\n\nNginx terminates TLS in front of the app server.")
    page.click("#kb-note button[type=submit]")
    page.wait_for_selector("#kb-note .kb-msg:has-text('Saved')")
    page.wait_for_selector("#kb-entries li:has-text('Proxy setup')")

    page.type("#kb-q", "ngin", delay=30)  # as the user types: prefix search, debounced
    hit = page.locator("#kb-results li").first
    hit.wait_for()
    assert hit.locator(".kb-result-title").inner_text() == "Proxy setup"
    assert hit.locator("mark").first.inner_text().lower() == "nginx"

    hit.click()
    page.wait_for_selector("#kb-detail-content:has-text('terminates TLS')")
    page.click("#kb-edit-btn")
    page.fill("#kb-edit [name=content]", "# Web\n\nCaddy terminates TLS now.")
    page.click("#kb-edit button[type=submit]")
    page.wait_for_selector("#kb-detail-content:has-text('Caddy terminates TLS now.')")

    page.fill("#kb-q", "caddy")
    page.wait_for_selector("#kb-results li mark:has-text('Caddy')")

    drop = page.evaluate_handle("""() => {
        const dt = new DataTransfer();
        const text = "# Airships\\n\\nZeppelins float on hydrogen.";
        dt.items.add(new File([text], "airships.md", {type: "text/markdown"}));
        return dt;
    }""")
    page.dispatch_event("#kb-drop", "drop", {"dataTransfer": drop})
    page.wait_for_selector("#kb-uploads li:has-text('airships.md: created')")
    page.fill("#kb-q", "zeppelins")
    page.wait_for_selector("#kb-results li:has-text('Airships')")
    page.screenshot(path=artifact_path("knowledge.png"), full_page=True)


def test_crawl_progress_is_shown_live(logged_in_page, owner, live_server_url, docs_site):
    page = logged_in_page(owner)
    page.goto(f"{live_server_url}/knowledge/")
    page.fill("#kb-crawl [name=url]", docs_site)
    page.click("#kb-crawl button[type=submit]")
    page.wait_for_selector("#kb-crawl-progress:not([hidden])")
    page.wait_for_selector("#kb-crawl-status:has-text('done')", timeout=30_000)
    assert "3 new or changed" in page.inner_text("#kb-crawl-counts")
    page.wait_for_selector("#kb-entries li:has-text('Installing')")
    page.fill("#kb-q", "quasar daemon")
    page.wait_for_selector("#kb-results li:has-text('Installing')")


def test_short_queries_empty_lists_and_markdown_entries(logged_in_page, staff, live_server_url, artifact_path):
    page = logged_in_page(staff)  # a user with no entries of their own yet
    page.goto(f"{live_server_url}/knowledge/")
    page.wait_for_selector("#kb-entries li.kb-empty:has-text('Write a note')")
    page.fill("#kb-q", "ng")
    page.wait_for_selector("#kb-search-state:has-text('Type at least 3 characters')")
    assert page.locator("#kb-results li").count() == 0

    page.fill("#kb-note [name=title]", "Rendered")
    page.fill("#kb-note [name=content]", "# Steps\n\n1. **Drain** the node\n2. Reboot\n\n<img src=x onerror=alert(1)>")
    page.click("#kb-note button[type=submit]")
    page.locator("#kb-entries li", has_text="Rendered").click()
    page.wait_for_selector("#kb-detail-content h1:has-text('Steps')")
    assert page.inner_text("#kb-detail-content strong") == "Drain"
    assert page.locator("#kb-detail-content img[onerror]").count() == 0
    page.screenshot(path=artifact_path("knowledge-markdown.png"), full_page=True)
