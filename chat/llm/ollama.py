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
        self, messages: list[Message], *, model: str | None = None, options: dict | None = None,
        tools: list[dict] | None = None,
    ) -> AsyncIterator[Delta]:
        body = {
            "model": model or self.config.model,
            "messages": [_ollama_message(m) for m in messages],
            "stream": True,
        }
        if tools:
            body["tools"] = tools
        # Ollama silently cuts prompts at its own small default context; size it to ours.
        body["options"] = {"num_ctx": self.config.context_tokens}
        body["options"].update({_OPTION_NAMES.get(k, k): v for k, v in (options or {}).items()})
        return http.with_retries(self.config, lambda: self._attempt(body))

    def _attempt(self, body: dict) -> AsyncIterator[Delta]:
        return http.stream_post(self.config, f"{self.root}/api/chat", body, _parse_ndjson)

    async def models(self) -> list[str]:
        data = await http.get_json(self.config, f"{self.root}/api/tags")
        return sorted(m["name"] for m in data.get("models", []) if isinstance(m, dict) and "name" in m)


def _ollama_message(message: Message) -> Message:
    """OpenAI-shaped tool messages in Ollama's shape: arguments as objects, results by tool name."""
    if message.get("tool_calls"):
        calls = [{"function": {"name": c["function"]["name"], "arguments": _arguments(c["function"]["arguments"])}}
                 for c in message["tool_calls"]]
        return {"role": "assistant", "content": message.get("content") or "", "tool_calls": calls}
    if message.get("role") == "tool":
        return {"role": "tool", "content": message.get("content") or "", "tool_name": message.get("name", "")}
    return message


def _arguments(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _tool_calls(message: dict, seen: int) -> list[dict]:
    """Ollama sends each call whole; arguments normally an object (kept as JSON text here, so
    every provider hands the loop the same shape, malformed ones included)."""
    calls = []
    for number, call in enumerate(message.get("tool_calls") or []):
        function = (call or {}).get("function") or {}
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else json.dumps(arguments if arguments is not None else {})
        calls.append({"id": str(call.get("id") or f"call_{seen + number}"), "name": str(function.get("name") or ""),
                      "arguments": text})
    return calls


async def _parse_ndjson(resp: aiohttp.ClientResponse, name: str) -> AsyncIterator[Delta]:
    calls: list[dict] = []
    try:
        async for raw in resp.content:
            line = raw.strip()
            if not line:
                continue
            data = _loads(line, name)
            if "error" in data:
                raise LLMUnavailable(f"The language model ({name}) reported: {data['error']}.")
            message = data.get("message") if isinstance(data.get("message"), dict) else {}
            text = message.get("content") or ""
            if text:
                yield Delta(text=text)
            calls += _tool_calls(message, len(calls))
            if data.get("done"):
                yield Delta(
                    done=True,
                    model=data.get("model"),
                    prompt_tokens=data.get("prompt_eval_count"),
                    completion_tokens=data.get("eval_count"),
                    tool_calls=tuple(calls),
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
