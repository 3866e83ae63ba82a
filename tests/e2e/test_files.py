"""The file manager in a real browser against the real daphne server."""

import pytest

from tests.e2e.test_files_page import open_empty

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_upload_list_preview_rename_delete(logged_in_page, owner, live_server_url, tmp_path, artifact_path):
    page = logged_in_page(owner)
    open_empty(page, live_server_url)

    source = tmp_path / "notes.txt"
    source.write_text("hello from the browser test\n")
    page.set_input_files("#file-input", str(source))
    row = page.locator("#entries tr[data-name='notes.txt']")
    row.wait_for()
    assert page.locator(".upload.done").count() == 1

    row.locator("a.file").click()
    page.wait_for_selector(".preview-text")
    assert page.locator(".preview-text").inner_text().strip() == "hello from the browser test"
    page.screenshot(path=artifact_path("files.png"), full_page=True)

    page.once("dialog", lambda dialog: dialog.accept("renamed.txt"))
    row.locator("button:has-text('Rename')").click()
    renamed = page.locator("#entries tr[data-name='renamed.txt']")
    renamed.wait_for()
    assert page.locator("#entries tr[data-name='notes.txt']").count() == 0

    page.once("dialog", lambda dialog: dialog.accept())
    renamed.locator("button:has-text('Delete')").click()
    page.wait_for_selector("#empty:not([hidden])")
    assert page.locator("#entries tr").count() == 0


def test_new_folder_and_breadcrumbs(logged_in_page, owner, live_server_url):
    page = logged_in_page(owner)
    page.goto(f"{live_server_url}/files/")
    page.wait_for_load_state("networkidle")
    page.once("dialog", lambda dialog: dialog.accept("reports"))
    page.click("#mkdir-button")
    page.locator("#entries tr[data-name='reports'] a.dir").click()
    page.wait_for_selector("#breadcrumbs [aria-current]:has-text('reports')")
    assert "path=reports" in page.url
    page.click("#breadcrumbs a:has-text('Home')")
    page.wait_for_selector("#entries tr[data-name='reports']")
