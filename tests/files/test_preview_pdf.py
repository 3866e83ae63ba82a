"""A PDF is previewed by the text inside it, never by its bytes."""

import pytest

from files import storage
from tests.knowledge.test_extract import make_pdf


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "alice"
    root.mkdir()
    return root


async def test_a_pdf_previews_as_its_extracted_text(root):
    (root / "report.pdf").write_bytes(make_pdf("Quarterly figures are up", "Second page"))
    preview = await storage.file_preview(str(root), "report.pdf")
    assert preview.kind == "text" and preview.encoding == "pdf-text"
    assert "Quarterly figures are up" in preview.text and "Second page" in preview.text
    assert "%PDF" not in preview.text


async def test_a_pdf_without_text_previews_as_metadata_only(root):
    textless = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    (root / "scan.pdf").write_bytes(textless)
    preview = await storage.file_preview(str(root), "scan.pdf")
    assert preview.kind == "none" and not preview.text
