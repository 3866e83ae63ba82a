"""Assemble the messages sent to the model within its context window (pure, no I/O).

Token counts are estimated (about four characters per token, plus a little per message):
close enough to budget with, and free of a tokenizer per model. The order of sacrifice when
space runs out: oldest history first, then knowledge passages beyond their own budget; the
system prompt and the question always go in.
"""

from __future__ import annotations

SYSTEM_PROMPT = (
    "You are AutoBot, a concise assistant for operations work. Answer in Markdown. "
    "If you are not sure, say so."
)
KNOWLEDGE_INTRO = (
    "Passages from the user's knowledge base follow. Use them when they are relevant and cite "
    "them as [1], [2] …; do not invent sources.\n\n"
)
PER_MESSAGE_TOKENS = 4


def estimate_tokens(text: str) -> int:
    return len(text) // 4 + PER_MESSAGE_TOKENS


def build(
    *,
    question: str,
    history: list[dict],
    passages: list[dict],
    context_tokens: int,
    reply_tokens: int,
    knowledge_tokens: int,
) -> tuple[list[dict], list[dict]]:
    """Return (messages for the provider, citations for the passages that made it in)."""
    budget = max(context_tokens - reply_tokens, 0)
    used = estimate_tokens(SYSTEM_PROMPT) + estimate_tokens(question)
    knowledge, citations = _knowledge_block(passages, min(knowledge_tokens, budget - used))
    system = SYSTEM_PROMPT + ("\n\n" + knowledge if knowledge else "")
    used += estimate_tokens(knowledge) if knowledge else 0
    kept = _recent_history(history, budget - used)
    return [{"role": "system", "content": system}, *kept, {"role": "user", "content": question}], citations


def _knowledge_block(passages: list[dict], budget: int) -> tuple[str, list[dict]]:
    parts, citations = [], []
    remaining = budget - estimate_tokens(KNOWLEDGE_INTRO)
    for passage in passages:
        number = len(citations) + 1
        head = f"[{number}] {passage.get('title') or 'Untitled'}"
        if passage.get("source"):
            head += f" ({passage['source']})"
        body = (passage.get("content") or passage.get("snippet") or "").strip()
        room = remaining - estimate_tokens(head)
        if room < 32:  # not even a useful fragment fits
            break
        if estimate_tokens(body) > room:
            body = body[: (room - PER_MESSAGE_TOKENS) * 4].rsplit(" ", 1)[0] + " …"
        block = f"{head}\n{body}"
        parts.append(block)
        remaining -= estimate_tokens(block)
        citations.append(
            {
                "entry_id": passage.get("entry_id"),
                "title": passage.get("title") or "Untitled",
                "source": passage.get("source") or "",
                "snippet": passage.get("snippet") or "",
            }
        )
    return (KNOWLEDGE_INTRO + "\n\n".join(parts), citations) if parts else ("", [])


def _recent_history(history: list[dict], budget: int) -> list[dict]:
    """The newest messages that fit, oldest first; a gap would confuse the model, so stop at
    the first one that does not fit."""
    kept: list[dict] = []
    for message in reversed(history):
        cost = estimate_tokens(message["content"])
        if cost > budget:
            break
        kept.append(message)
        budget -= cost
    kept.reverse()
    return kept
