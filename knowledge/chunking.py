"""Split Markdown-ish text into retrieval chunks.

Pure: no Django, no I/O. Text from every source (notes, Markdown, HTML and PDF
after `knowledge.extract`) arrives as Markdown-ish text: ATX headings (`# ...`)
separate sections, blank lines separate paragraphs, fenced code stays whole
where it fits.

Each chunk keeps the heading path it sits under, so a search hit can say
"Install > Linux" and so the heading words can be indexed with the chunk.
Chunks never straddle a heading; inside a section paragraphs are packed up to
``size`` characters and each chunk after the first repeats the tail of the
previous one (``overlap`` characters, cut at a word boundary) so a sentence
split across two chunks is still findable in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_SIZE = 1000
DEFAULT_OVERLAP = 150

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    heading_path: tuple[str, ...] = field(default_factory=tuple)

    @property
    def heading(self) -> str:
        return " > ".join(self.heading_path)


@dataclass
class _Section:
    heading_path: tuple[str, ...]
    blocks: list[str]


def chunk_text(text: str, *, size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP) -> list[Chunk]:
    """Chunk ``text``; returns an empty list for blank input."""
    if size < 100:
        raise ValueError("chunk size must be at least 100 characters")
    overlap = max(0, min(overlap, size // 3))
    pieces: list[tuple[str, tuple[str, ...]]] = []
    for section in _sections(text):
        for body in _pack(section.blocks, size=size, overlap=overlap):
            pieces.append((body, section.heading_path))
    return [Chunk(index=i, text=body, heading_path=path) for i, (body, path) in enumerate(pieces)]


def _sections(text: str) -> list[_Section]:
    """Walk the lines once: headings open sections, blank lines end blocks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    stack: list[tuple[int, str]] = []
    sections = [_Section((), [])]
    block: list[str] = []
    in_fence = False

    def end_block() -> None:
        joined = "\n".join(block).strip()
        if joined:
            sections[-1].blocks.append(joined)
        block.clear()

    for line in text.split("\n"):
        if _FENCE.match(line.strip()):
            in_fence = not in_fence
            block.append(line)
            if not in_fence:
                end_block()
            continue
        if in_fence:
            block.append(line)
            continue
        heading = _HEADING.match(line.strip())
        if heading:
            end_block()
            level, title = len(heading.group(1)), heading.group(2).strip()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            sections.append(_Section(tuple(t for _, t in stack), []))
        elif not line.strip():
            end_block()
        else:
            block.append(line.rstrip())
    end_block()
    return [s for s in sections if s.blocks]


def _pack(blocks: list[str], *, size: int, overlap: int) -> list[str]:
    """Greedily pack blocks into chunks of at most ``size`` characters."""
    units: list[str] = []
    for block in blocks:
        units.extend([block] if len(block) <= size else _split_long(block, size - overlap))
    chunks: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current}\n\n{unit}" if current else unit
        if len(candidate) <= size or not current:
            current = candidate
            continue
        chunks.append(current)
        tail = _tail(current, overlap)
        current = f"{tail}\n\n{unit}" if tail and len(tail) + 2 + len(unit) <= size else unit
    if current:
        chunks.append(current)
    return chunks


def _split_long(block: str, limit: int) -> list[str]:
    """Cut an oversized paragraph at sentence ends, then words, then hard."""
    parts: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(block):
        for piece in _split_words(sentence, limit) if len(sentence) > limit else [sentence]:
            candidate = f"{current} {piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                parts.append(current)
                current = piece
    if current:
        parts.append(current)
    return [p for p in parts if p]


def _split_words(sentence: str, limit: int) -> list[str]:
    parts: list[str] = []
    current = ""
    for word in sentence.split():
        while len(word) > limit:  # a URL or base64 blob with no spaces
            if current:
                parts.append(current)
                current = ""
            parts.append(word[:limit])
            word = word[limit:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= limit:
            current = candidate
        else:
            parts.append(current)
            current = word
    if current:
        parts.append(current)
    return parts


def _tail(text: str, overlap: int) -> str:
    """The last ``overlap`` characters of ``text``, starting on a word."""
    if overlap <= 0 or len(text) <= overlap:
        return "" if overlap <= 0 else text
    tail = text[-overlap:]
    space = tail.find(" ")
    if 0 <= space < len(tail) - 1:
        tail = tail[space + 1 :]
    return tail.strip()
