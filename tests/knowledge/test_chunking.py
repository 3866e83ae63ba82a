from knowledge.chunking import chunk_text


def test_blank_text_gives_no_chunks():
    assert chunk_text("") == []
    assert chunk_text("\n\n   \n") == []


def test_a_short_note_is_one_chunk_without_headings():
    [chunk] = chunk_text("Just a short note.\n\nWith two paragraphs.")
    assert chunk.index == 0
    assert chunk.text == "Just a short note.\n\nWith two paragraphs."
    assert chunk.heading_path == ()


def test_chunks_keep_their_heading_path():
    text = "# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### Linux\n\nUse apt.\n\n## Usage\n\nCall it."
    chunks = chunk_text(text)
    assert [(c.heading_path, c.text) for c in chunks] == [
        (("Guide",), "Intro."),
        (("Guide", "Install"), "Run it."),
        (("Guide", "Install", "Linux"), "Use apt."),
        (("Guide", "Usage"), "Call it."),
    ]
    assert chunks[2].heading == "Guide > Install > Linux"


def test_hashes_inside_code_fences_are_not_headings():
    chunks = chunk_text("# Real\n\n```\n# not a heading\nrm -rf build\n```\n\nAfter.")
    assert {c.heading_path for c in chunks} == {("Real",)}
    assert "# not a heading" in chunks[0].text


def test_long_sections_are_packed_near_the_size_with_overlap():
    paragraphs = [f"Paragraph {i} " + "word " * 40 for i in range(30)]
    chunks = chunk_text("\n\n".join(paragraphs), size=1000, overlap=150)
    assert len(chunks) > 5
    assert all(len(c.text) <= 1000 for c in chunks)
    assert all(len(c.text) > 400 for c in chunks[:-1])
    for before, after in zip(chunks, chunks[1:], strict=False):
        head = after.text.split("\n\n", 1)[0]
        assert before.text.endswith(head), "each chunk starts with the tail of the previous one"
    joined = " ".join(c.text for c in chunks)
    assert all(p.split()[1] in joined for p in paragraphs)


def test_a_giant_paragraph_is_split_at_sentences_then_words():
    text = " ".join(f"Sentence number {i} says something useful." for i in range(200))
    text += " " + "x" * 2500
    chunks = chunk_text(text, size=1000, overlap=100)
    assert all(len(c.text) <= 1000 for c in chunks)
    assert "Sentence number 0 says" in chunks[0].text
    assert sum(c.text.count("x" * 100) for c in chunks) >= 20


def test_windows_newlines_and_deep_headings():
    chunks = chunk_text("# A\r\n\r\ntext a\r\n#### D\r\n\r\ntext d\r\n## B\r\ntext b")
    assert [c.heading_path for c in chunks] == [("A",), ("A", "D"), ("A", "B")]
