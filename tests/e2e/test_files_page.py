"""The file manager as a person meets it: dot files, refusals, PDFs, moving, and a phone."""

import pytest

from tests.e2e.conftest import fits_width

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


CLEAR = """async () => {
  const csrf = document.querySelector('meta[name=csrf-token]').content;
  const list = await (await fetch('/api/files/?limit=500')).json();
  for (const e of list.items) {
    await fetch(`/api/files/?path=${encodeURIComponent(e.path)}&recursive=true`,
                {method: 'DELETE', headers: {'X-CSRFToken': csrf}});
  }
}"""


def open_empty(page, url):
    """The files page on an empty area (the server and the user's area outlive one test)."""
    page.goto(f"{url}/files/")
    page.evaluate(CLEAR)
    page.reload()
    page.wait_for_selector("#empty:not([hidden])")


def upload(page, name, data, mime="text/plain"):
    page.set_input_files("#file-input", files=[{"name": name, "mimeType": mime, "buffer": data}])


def test_dot_files_are_hidden_until_asked_for(logged_in_page, owner, live_server_url):
    page = logged_in_page(owner)
    open_empty(page, live_server_url)
    upload(page, ".secretrc", b"x=1\n")
    page.wait_for_selector("#hidden-note:has-text('1 hidden file')")
    assert page.locator("#entries tr[data-name='.secretrc']").count() == 0
    page.check("#show-hidden")
    page.wait_for_selector("#entries tr[data-name='.secretrc']")
    page.reload()
    page.wait_for_selector("#entries tr[data-name='.secretrc']")  # the choice is remembered


def test_a_refused_upload_shows_why_and_no_full_bar(logged_in_page, owner, live_server_url, artifact_path):
    page = logged_in_page(owner)
    open_empty(page, live_server_url)
    upload(page, "twice.txt", b"one\n")
    page.wait_for_selector("#entries tr[data-name='twice.txt']")
    page.once("dialog", lambda dialog: dialog.dismiss())  # "already exists. Replace it?" — no
    upload(page, "twice.txt", b"two\n")
    failed = page.locator(".upload.failed")
    failed.wait_for()
    assert "exists" in failed.locator(".upload-status").inner_text()
    assert failed.locator("progress").count() == 0
    page.screenshot(path=artifact_path("files-refused.png"), full_page=True)


def test_a_pdf_preview_shows_its_text_never_its_bytes(logged_in_page, owner, live_server_url, artifact_path):
    from tests.knowledge.test_extract import make_pdf

    page = logged_in_page(owner)
    open_empty(page, live_server_url)
    upload(page, "report.pdf", make_pdf("Quarterly figures are up"), "application/pdf")
    page.locator("#entries tr[data-name='report.pdf'] a.file").click()
    page.wait_for_selector("#preview-body .preview-text:has-text('Quarterly figures are up')")
    assert "Text extracted from the PDF" in page.inner_text("#preview")
    assert "%PDF" not in page.inner_text("#preview")
    page.screenshot(path=artifact_path("files-pdf-preview.png"), full_page=True)

    upload(page, "scan.pdf", PDF, "application/pdf")  # no text in it
    page.locator("#entries tr[data-name='scan.pdf'] a.file").click()
    page.wait_for_selector("#preview-body a:has-text('Download the PDF')")
    assert "%PDF" not in page.inner_text("#preview")


def test_the_move_dialog_picks_a_destination_folder(logged_in_page, owner, live_server_url, artifact_path):
    page = logged_in_page(owner)
    open_empty(page, live_server_url)
    for name in ("archive", "inbox"):
        page.once("dialog", lambda dialog, name=name: dialog.accept(name))
        page.click("#mkdir-button")
        page.wait_for_selector(f"#entries tr[data-name='{name}']")
    upload(page, "plan.txt", b"plan\n")
    page.locator("#entries tr[data-name='plan.txt'] button.move").click()
    assert page.is_disabled("#move-confirm")  # it is already here
    page.click("#move-folders button:has-text('archive/')")
    page.wait_for_selector("#move-where:has-text('/archive')")
    page.screenshot(path=artifact_path("files-move.png"))
    page.click("#move-confirm")
    page.wait_for_selector("#entries tr[data-name='plan.txt']", state="detached")
    page.locator("#entries tr[data-name='archive'] a.dir").click()
    page.wait_for_selector("#entries tr[data-name='plan.txt']")


def test_on_a_phone_every_files_action_is_on_screen(phone_page, owner, live_server_url, artifact_path):
    page = phone_page(live_server_url, owner)
    open_empty(page, live_server_url)
    upload(page, "a-rather-long-file-name-for-a-phone-screen.txt", b"hi\n")
    row = page.locator("#entries tr").first
    row.wait_for()
    assert fits_width(page)
    for button in row.locator(".row-actions > *").all():
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, button.inner_text()
    assert page.is_visible("#upload-button") and page.is_visible("#mkdir-button")
    page.screenshot(path=artifact_path("files-390.png"), full_page=True)
