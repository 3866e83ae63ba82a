"""A fake language model: a real aiohttp server on 127.0.0.1 speaking both wire protocols.

- Ollama: `POST /api/chat` (NDJSON stream), `GET /api/tags`
- OpenAI: `POST /v1/chat/completions` (SSE stream), `GET /v1/models`

Faults are switched on per test by setting attributes: `failures` (statuses answered before a
normal reply, e.g. `[500, 429]`), `disconnect_after`/`malformed_after`/`stall_after`/
`pause_after` (a token count), `delay` (seconds between tokens). By default it echoes the last
user message back word by word. `script` makes it call tools: a list of steps (one per chat
request, the last repeated) or a function of the request body returning a step; a step is
`{"text": "...", "tool_calls": [{"id", "name", "arguments"}]}` with arguments a dict or raw
(possibly malformed) JSON text. OpenAI streams each call's arguments in pieces, the calls
interleaved (parallel calls); Ollama sends each call whole, as Ollama does. `resume` is an asyncio
event of the fake's loop: from another thread (FakeLLMThread), set it with
`fake.loop.call_soon_threadsafe(fake.resume.set)`. Run it standalone with
`python tests/chat/fake_llm.py --port 11434 --delay 0.05`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import threading
import time
from typing import Self

from aiohttp import web


class FakeLLM:
    def __init__(self, *, tokens: list[str] | None = None, delay: float = 0.0,
                 models: tuple[str, ...] = ("fake-small", "fake-large"), api_key: str = ""):
        self.tokens = tokens
        self.script = None
        self.delay = delay
        self.models = list(models)
        self.api_key = api_key
        self.failures: list[int] = []
        self.retry_after: str | None = None
        self.disconnect_after: int | None = None
        self.malformed_after: int | None = None
        self.stall_after: int | None = None
        self.pause_after: int | None = None
        # Apply the stream faults above to the first N requests only (None: to all).
        self.faulty_requests: int | None = None
        self.resume = asyncio.Event()
        self.requests: list[dict] = []
        self.requested = asyncio.Event()  # set by the first chat request
        self.headers: list[dict] = []
        self.completed = 0
        self.disconnects = 0
        self.client_gone = asyncio.Event()
        self.streaming = 0  # answers in flight right now
        self.peak_streaming = 0
        self.url = ""
        self.loop: asyncio.AbstractEventLoop | None = None  # the loop it serves on, set by start()
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, port: int = 0) -> FakeLLM:
        self.loop = asyncio.get_running_loop()
        app = web.Application()
        app.router.add_post("/api/chat", self._ollama_chat)
        app.router.add_get("/api/tags", self._ollama_tags)
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_get("/v1/models", self._openai_models)
        # handler_cancellation: a client that goes away cancels the handler, which we count.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5,
                                     access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        sockets = site._server.sockets
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- the answer --------------------------------------------------------------------------
    def step(self, body: dict) -> dict | None:
        if self.script is None:
            return None
        if callable(self.script):
            return self.script(body)
        return self.script[min(len(self.requests), len(self.script)) - 1]

    def reply_tokens(self, body: dict) -> list[str]:
        step = self.step(body)
        if step is not None:
            return re.findall(r"\s*\S+", step.get("text", ""))
        if self.tokens is not None:
            return list(self.tokens)
        messages = body.get("messages") or []
        last = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
        return re.findall(r"\s*\S+", f"Echo: {last}") or ["Echo:"]

    def _faulty(self) -> bool:
        return self.faulty_requests is None or len(self.requests) <= self.faulty_requests

    async def _tokens(self, request: web.Request, body: dict):
        """Yield tokens, applying the configured faults; returns normally when all are sent."""
        faulty = self._faulty()
        for position, token in enumerate(self.reply_tokens(body)):
            index = position if faulty else -1  # no fault is ever set at -1
            if index == self.pause_after:
                await self.resume.wait()
            if index == self.stall_after:
                await asyncio.Event().wait()  # never answers again: the client must time out
            if self.delay:
                await asyncio.sleep(self.delay)
            yield index, token

    async def _received(self, request: web.Request) -> tuple[dict, web.Response | None]:
        """A chat request, recorded; and the fault to answer it with instead, if any."""
        body = await request.json()
        self.requests.append(body)
        self.requested.set()
        return body, self._refuse(request)

    def _refuse(self, request: web.Request) -> web.Response | None:
        self.headers.append(dict(request.headers))
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "invalid api key"}}, status=401)
        if self.failures:
            status = self.failures.pop(0)
            headers = {"Retry-After": self.retry_after} if self.retry_after and status == 429 else {}
            return web.json_response({"error": f"fake failure {status}"}, status=status,
                                     headers=headers)
        return None

    async def _stream(self, request: web.Request, content_type: str, frames) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": content_type})
        await resp.prepare(request)
        self.streaming += 1
        self.peak_streaming = max(self.peak_streaming, self.streaming)
        try:
            async for frame in frames:
                if frame is None:  # a mid-stream disconnect
                    request.transport.close()
                    return resp
                await resp.write(frame)
            await resp.write_eof()
            self.completed += 1
        except ConnectionResetError:  # the client left between two writes
            self.disconnects += 1
            self.client_gone.set()
            return resp
        except asyncio.CancelledError:  # the client left while we waited
            self.disconnects += 1
            self.client_gone.set()
            raise
        finally:
            self.streaming -= 1
        return resp

    # -- Ollama --------------------------------------------------------------------------------
    async def _ollama_chat(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._received(request)
        if refused:
            return refused
        if body.get("model") not in self.models:
            return web.json_response({"error": f"model '{body.get('model')}' not found"},
                                     status=404)
        return await self._stream(request, "application/x-ndjson", self._ollama_frames(request, body))

    async def _ollama_frames(self, request, body):
        model = body["model"]
        count = 0
        async for index, token in self._tokens(request, body):
            if index == self.disconnect_after:
                yield None
                return
            if index == self.malformed_after:
                yield b'{"model": "' + model.encode() + b'", "message": {"content": \n'
                continue
            count += 1
            yield _line({"model": model, "created_at": _now(), "done": False,
                         "message": {"role": "assistant", "content": token}})
        calls = (self.step(body) or {}).get("tool_calls") or []
        if calls:
            yield _line({"model": model, "created_at": _now(), "done": False,
                         "message": {"role": "assistant", "content": "", "tool_calls": [
                             {"function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]}})
        yield _line({"model": model, "created_at": _now(), "done": True, "done_reason": "stop",
                     "message": {"role": "assistant", "content": ""},
                     "prompt_eval_count": _prompt_tokens(body), "eval_count": count})

    async def _ollama_tags(self, request: web.Request) -> web.Response:
        if refused := self._refuse(request):
            return refused
        return web.json_response({"models": [{"name": m, "model": m, "size": 1} for m in self.models]})

    # -- OpenAI --------------------------------------------------------------------------------
    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._received(request)
        if refused:
            return refused
        if body.get("model") not in self.models:
            return web.json_response({"error": {"message": f"model {body.get('model')} not found"}},
                                     status=404)
        return await self._stream(request, "text/event-stream", self._openai_frames(request, body))

    async def _openai_frames(self, request, body):
        model = body["model"]
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": model}
        count = 0
        yield b": keep-alive comment\n\n"
        async for index, token in self._tokens(request, body):
            if index == self.disconnect_after:
                yield None
                return
            if index == self.malformed_after:
                yield b"data: {\"choices\": [{\"delta\": \n\n"
                continue
            count += 1
            yield _sse({**base, "choices": [{"index": 0, "delta": {"content": token},
                                             "finish_reason": None}]})
        calls = (self.step(body) or {}).get("tool_calls") or []
        for frame in _openai_tool_frames(base, calls):
            yield frame
        finish = "tool_calls" if calls else "stop"
        yield _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            yield _sse({**base, "choices": [], "usage": {"prompt_tokens": _prompt_tokens(body),
                                                         "completion_tokens": count}})
        yield b"data: [DONE]\n\n"

    async def _openai_models(self, request: web.Request) -> web.Response:
        if refused := self._refuse(request):
            return refused
        return web.json_response({"object": "list",
                                  "data": [{"id": m, "object": "model"} for m in self.models]})


def _openai_tool_frames(base: dict, calls: list[dict]):
    """Each call opens with its id and name; then the arguments in three pieces per call,
    interleaved across the calls, as servers streaming parallel calls do."""
    texts = [c["arguments"] if isinstance(c["arguments"], str) else json.dumps(c["arguments"]) for c in calls]
    for index, call in enumerate(calls):
        yield _sse({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"role": "assistant",
                    "tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                    "function": {"name": call["name"], "arguments": ""}}]}}]})
    for part in range(3):
        for index, text in enumerate(texts):
            size = -(-len(text) // 3)
            piece = text[part * size:(part + 1) * size]
            if piece:
                yield _sse({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {
                    "tool_calls": [{"index": index, "function": {"arguments": piece}}]}}]})


def _line(data: dict) -> bytes:
    return json.dumps(data).encode() + b"\n"


def _sse(data: dict) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _prompt_tokens(body: dict) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])


class FakeLLMThread:
    """The fake on its own loop in a thread, for callers without a shared loop (e2e, bench)."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.fake: FakeLLM | None = None
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.fake = self.loop.run_until_complete(FakeLLM(**self.kwargs).start())
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.fake.close())

    def __enter__(self) -> FakeLLM:
        self._thread.start()
        self._ready.wait(10)
        return self.fake

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.05)
    args = parser.parse_args()

    async def serve() -> None:
        fake = await FakeLLM(delay=args.delay).start(args.port)
        print(f"fake LLM listening on {fake.url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
