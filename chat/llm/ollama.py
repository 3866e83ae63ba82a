"""Ollama's native API: `/api/chat` streams one JSON object per line, `/api/tags` lists models."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp

from chat.llm import http
from chat.llm.base import Delta, LLMUnavailable, Message, ProviderConfig

# Generic option names the chat service uses → Ollama's names.
_OPTION_NAMES = {"max_tokens": "num_predict"}


class OllamaProvider:
    def __init__(self, config: ProviderConfig):
        self.config = config
        self.root = (config.base_url or "http://127.0.0.1:11434").rstrip("/")

    def stream(
        self, messages: list[Message], *, model: str | None = None, options: dict | None = None
    ) -> AsyncIterator[Delta]:
        body = {
            "model": model or self.config.model,
            "messages": messages,
            "stream": True,
        }
        # Ollama silently cuts prompts at its own small default context; size it to ours.
        body["options"] = {"num_ctx": self.config.context_tokens}
        body["options"].update({_OPTION_NAMES.get(k, k): v for k, v in (options or {}).items()})
        return http.with_retries(self.config, lambda: self._attempt(body))

    def _attempt(self, body: dict) -> AsyncIterator[Delta]:
        return http.stream_post(self.config, f"{self.root}/api/chat", body, _parse_ndjson)

    async def models(self) -> list[str]:
        data = await http.get_json(self.config, f"{self.root}/api/tags")
        return sorted(m["name"] for m in data.get("models", []) if isinstance(m, dict) and "name" in m)


async def _parse_ndjson(resp: aiohttp.ClientResponse, name: str) -> AsyncIterator[Delta]:
    try:
        async for raw in resp.content:
            line = raw.strip()
            if not line:
                continue
            data = _loads(line, name)
            if "error" in data:
                raise LLMUnavailable(f"The language model ({name}) reported: {data['error']}.")
            text = (data.get("message") or {}).get("content") or ""
            if text:
                yield Delta(text=text)
            if data.get("done"):
                yield Delta(
                    done=True,
                    model=data.get("model"),
                    prompt_tokens=data.get("prompt_eval_count"),
                    completion_tokens=data.get("eval_count"),
                )
                return
    except ValueError as exc:  # aiohttp: a line longer than its buffer
        raise LLMUnavailable(f"The language model ({name}) sent a malformed response.") from exc
    raise LLMUnavailable(
        f"The language model ({name}) closed the connection mid-answer.", retryable=True
    )


def _loads(line: bytes, name: str) -> dict:
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise LLMUnavailable(f"The language model ({name}) sent a malformed response.")
    return data
