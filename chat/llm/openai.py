"""Any OpenAI-compatible server: `/v1/chat/completions` with `stream: true` (SSE), `/v1/models`."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import aiohttp

from chat.llm import http
from chat.llm.base import Delta, LLMUnavailable, Message, ProviderConfig

_TOP_LEVEL_OPTIONS = {"temperature", "top_p", "max_tokens", "stop", "seed", "presence_penalty",
                      "frequency_penalty"}


class OpenAIProvider:
    def __init__(self, config: ProviderConfig):
        self.config = config
        root = (config.base_url or "https://api.openai.com").rstrip("/")
        # Accept both "http://host:8000" and the SDK style "http://host:8000/v1".
        self.root = root if re.search(r"/v\d+$", root) else f"{root}/v1"

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}

    def stream(
        self, messages: list[Message], *, model: str | None = None, options: dict | None = None,
        tools: list[dict] | None = None,
    ) -> AsyncIterator[Delta]:
        body = {"model": model or self.config.model, "messages": messages, "stream": True}
        if tools:
            body["tools"] = tools
        if self.config.extra.get("include_usage", True):
            body["stream_options"] = {"include_usage": True}
        for key, value in (options or {}).items():
            if key in _TOP_LEVEL_OPTIONS:
                body[key] = value
        return http.with_retries(self.config, lambda: self._attempt(body))

    def _attempt(self, body: dict) -> AsyncIterator[Delta]:
        return http.stream_post(self.config, f"{self.root}/chat/completions", body, _parse_sse, self._headers())

    async def models(self) -> list[str]:
        data = await http.get_json(self.config, f"{self.root}/models", self._headers())
        return sorted(m["id"] for m in data.get("data", []) if isinstance(m, dict) and "id" in m)


async def _sse_events(resp: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """Yield the data of each server-sent event (multi-line data joined per the SSE spec)."""
    data: list[str] = []
    async for raw in resp.content:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        # Comments (":" keep-alives), "event:", "id:" and "retry:" carry nothing we need.
    if data:
        yield "\n".join(data)


async def _parse_sse(resp: aiohttp.ClientResponse, name: str) -> AsyncIterator[Delta]:
    model = usage = None
    finished = False
    calls: dict[int, dict] = {}  # streamed tool calls by index, their arguments arriving in pieces
    try:
        async for event in _sse_events(resp):
            if event.strip() == "[DONE]":
                finished = True
                break
            chunk = _loads(event, name)
            if "error" in chunk:
                err = chunk["error"]
                msg = err.get("message", err) if isinstance(err, dict) else err
                raise LLMUnavailable(f"The language model ({name}) reported: {msg}.")
            model = chunk.get("model") or model
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                delta = (choice or {}).get("delta") or {}
                text = delta.get("content") or ""
                if text:
                    yield Delta(text=text)
                _add_tool_calls(calls, delta.get("tool_calls"))
                if (choice or {}).get("finish_reason"):
                    finished = True
    except ValueError as exc:  # aiohttp: a line longer than its buffer
        raise LLMUnavailable(f"The language model ({name}) sent a malformed response.") from exc
    if not finished:
        raise LLMUnavailable(
            f"The language model ({name}) closed the connection mid-answer.", retryable=True
        )
    usage = usage if isinstance(usage, dict) else {}
    yield Delta(
        done=True,
        model=model,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        tool_calls=tuple(calls[i] for i in sorted(calls)),
    )


def _add_tool_calls(calls: dict[int, dict], pieces) -> None:
    """Merge one chunk's `tool_calls` deltas: the first piece of a call names it, later ones
    (same index) append to its arguments."""
    for number, piece in enumerate(pieces if isinstance(pieces, list) else []):
        if not isinstance(piece, dict):
            continue
        index = piece.get("index", number)
        call = calls.setdefault(index if isinstance(index, int) else number, {"id": "", "name": "", "arguments": ""})
        function = piece.get("function") if isinstance(piece.get("function"), dict) else {}
        call["id"] = call["id"] or str(piece.get("id") or "")
        call["name"] = call["name"] or str(function.get("name") or "")
        if isinstance(function.get("arguments"), str):
            call["arguments"] += function["arguments"]


def _loads(event: str, name: str) -> dict:
    try:
        data = json.loads(event)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise LLMUnavailable(f"The language model ({name}) sent a malformed response.")
    return data
