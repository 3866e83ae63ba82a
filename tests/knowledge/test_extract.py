import pytest

from knowledge.extract import ExtractionError, detect_format, extract


def make_pdf(*pages: str) -> bytes:
    """A minimal valid PDF with one text line per page (Helvetica)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
        content_ref = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_ref} 0 R"
            " /Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_plain_text_keeps_its_paragraphs():
    result = extract(b"First line.\r\n\r\n\r\n\r\nSecond paragraph.  \n", filename="notes.txt")
    assert result.format == "text"
    assert result.text == "First line.\n\nSecond paragraph."
    assert result.title == "notes"


def test_markdown_takes_its_title_from_the_first_heading():
    result = extract("# Déploiement\n\nÉtapes.".encode(), filename="deploy.md")
    assert (result.format, result.title) == ("markdown", "Déploiement")


def test_latin1_text_is_decoded():
    result = extract("café crème".encode("latin-1"), filename="menu.txt")
    assert "caf" in result.text and "\ufffd" not in result.text


def test_html_keeps_main_text_and_headings_not_tags_or_furniture():
    html = b"""<html><head><title>Guide</title><style>p{color:red}</style></head><body>
    <nav>Home | About</nav><main><h1>Install</h1><p>Run <code>make</code> now.</p>
    <script>alert('x')</script><h2>Linux</h2><ul><li>apt</li><li>dnf</li></ul></main>
    <footer>Copyright</footer></body></html>"""
    result = extract(html, filename="guide.html")
    assert result.title == "Guide"
    assert result.text == "# Install\n\nRun make now.\n\n## Linux\n\n- apt\n\n- dnf"


def test_html_links_are_absolute_and_robots_meta_is_read():
    html = (
        b'<html><head><meta name="robots" content="noindex, nofollow"></head><body>'
        b'<a href="../x">x</a><a href="#top">top</a><a rel="nofollow" href="/n">n</a><p>t</p></body></html>'
    )
    result = extract(html, content_type="text/html; charset=utf-8", url="http://example.com/a/b/c")
    assert result.links == ["http://example.com/a/x"]
    assert result.noindex and result.nofollow


def test_pdf_text_is_extracted_page_by_page():
    result = extract(make_pdf("Hello from page one", "And page two"), filename="report.pdf")
    assert result.format == "pdf"
    assert "Hello from page one" in result.text and "And page two" in result.text
    assert result.title == "report"


@pytest.mark.parametrize(
    ("data", "filename", "message"),
    [
        (b"", "empty.txt", "empty"),
        (b"%PDF-1.4\nthis is not really a pdf", "broken.pdf", "PDF could not be parsed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.txt", "binary"),
        (b"<html><body><script>x()</script></body></html>", "page.html", "no readable text"),
        (b"PK\x03\x04", "archive.zip", "unsupported file type '.zip'"),
    ],
)
def test_unreadable_input_raises_a_clear_error(data, filename, message):
    with pytest.raises(ExtractionError, match=message):
        extract(data, filename=filename)


def test_a_pdf_with_no_text_is_refused():
    with pytest.raises(ExtractionError, match="no extractable text"):
        extract(make_pdf(""), filename="scan.pdf")


def test_format_detection_prefers_content_type_then_name_then_bytes():
    assert detect_format(content_type="application/pdf", filename="x.txt") == "pdf"
    assert detect_format(filename="x.MD") == "markdown"
    assert detect_format(data=b"  <!DOCTYPE html><html>") == "html"
    assert detect_format(data=b"hello") == "text"


@pytest.mark.parametrize("stored_title", [" ", "Untitled"])
def test_a_pdf_with_a_blank_or_placeholder_title_takes_its_file_name(stored_title):
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf("Quarterly figures"))))
    writer.add_metadata({"/Title": stored_title})
    out = io.BytesIO()
    writer.write(out)
    assert extract(out.getvalue(), filename="q3-report.pdf").title == "q3-report"
