"""The provider used when no language model is configured.

It answers from the user's knowledge base: the most relevant passages with their sources,
and a plain statement that no model is configured and how to configure one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from chat.llm.base import Delta, Message, ProviderConfig

Retrieve = Callable[[str], Awaitable[list[dict]]]

MODEL_NAME = "knowledge-base"
PASSAGE_CHARS = 600
HOW_TO_CONFIGURE = (
    "No language model is configured, so AutoBot cannot write an answer itself. "
    "To enable one, set `AUTOBOT_LLM_PROVIDER` (`ollama` or `openai`), "
    "`AUTOBOT_LLM_BASE_URL` (e.g. `http://127.0.0.1:11434`) and `AUTOBOT_LLM_MODEL`, "
    "then restart AutoBot."
)


class OfflineProvider:
    def __init__(self, config: ProviderConfig, retrieve: Retrieve | None = None):
        self.config = config
        self.retrieve = retrieve

    async def models(self) -> list[str]:
        return [MODEL_NAME]

    async def stream(
        self, messages: list[Message], *, model: str | None = None, options: dict | None = None,
        tools: list[dict] | None = None,  # it cannot act: tools are never called
    ) -> AsyncIterator[Delta]:
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        passages = await self._passages(question)
        for part in compose(passages, searched=self.retrieve is not None):
            yield Delta(text=part)
        yield Delta(done=True, model=MODEL_NAME, citations=tuple(citations_of(passages)))

    async def _passages(self, question: str) -> list[dict]:
        if self.retrieve is None or not question.strip():
            return []
        try:
            return list(await self.retrieve(question))
        except Exception:  # noqa: BLE001 — a broken knowledge base must not break the answer
            return []


def compose(passages: list[dict], *, searched: bool) -> list[str]:
    """The answer as a few Markdown paragraphs (streamed one by one)."""
    parts = [HOW_TO_CONFIGURE + "\n\n"]
    if passages:
        parts.append("The most relevant passages from your knowledge base:\n\n")
        for number, passage in enumerate(passages, start=1):
            parts.append(_passage_markdown(number, passage))
    elif searched:
        parts.append("Nothing in your knowledge base matches this question.\n")
    return parts


def citations_of(passages: list[dict]) -> list[dict]:
    return [
        {
            "entry_id": p.get("entry_id"),
            "title": p.get("title") or "Untitled",
            "source": p.get("source") or "",
            "snippet": p.get("snippet") or "",
        }
        for p in passages
    ]


def _passage_markdown(number: int, passage: dict) -> str:
    title = _escape(passage.get("title") or "Untitled")
    text = " ".join((passage.get("content") or passage.get("snippet") or "").split())
    if len(text) > PASSAGE_CHARS:
        text = text[:PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"
    heading = passage.get("heading_path") or ""
    if isinstance(heading, list | tuple):
        heading = " › ".join(str(h) for h in heading)
    where = f" — {_escape(heading)}" if heading else ""
    return f"{number}. **{title}**{where} [{number}]\n\n   > {_escape(text)}\n\n"


def _escape(text: str) -> str:
    # Knowledge text is data, not markup: keep it from opening links, headings or HTML.
    for ch in "\\`*_[]<>#|":
        text = text.replace(ch, "\\" + ch)
    return text
