"""The provider interface shared by every language-model backend.

A provider turns a list of chat messages into an async stream of `Delta`s: zero or more
token deltas (`text`) and then exactly one final delta (`done=True`) carrying the usage
figures the provider reported. Anything that goes wrong upstream surfaces as
`LLMUnavailable`, whose detail is a sentence fit to show a user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

# {"role": "system|user|assistant|tool", "content": "..."}; an assistant message may carry
# "tool_calls" and a tool message "tool_call_id"/"name" (OpenAI's shapes; providers convert).
Message = dict[str, Any]


class LLMUnavailable(Exception):
    """The language model could not produce (or finish) an answer."""

    code = "llm_unavailable"

    def __init__(self, detail: str, *, code: str | None = None, retryable: bool = False):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        # Internal hint for the retry loop; never shown to users.
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Delta:
    text: str = ""
    done: bool = False
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Only the offline provider fills this: it *is* its own retrieval.
    citations: tuple[dict, ...] = ()
    # On the final delta: the calls the model asked for, each {"id", "name", "arguments"}, the
    # arguments as the raw JSON text the model wrote (it may be malformed; the caller checks).
    tool_calls: tuple[dict, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    kind: str  # "ollama" | "openai" | "offline"
    base_url: str = ""
    api_key: str = ""
    model: str = ""
    connect_timeout: float = 5.0
    # Longest silence tolerated between two chunks (and before the first one).
    read_timeout: float = 60.0
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    context_tokens: int = 8192
    extra: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    config: ProviderConfig

    def stream(
        self, messages: list[Message], *, model: str | None = None, options: dict | None = None,
        tools: list[dict] | None = None,
    ) -> AsyncIterator[Delta]: ...

    async def models(self) -> list[str]: ...
