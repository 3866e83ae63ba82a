"""One shared aiohttp session per event loop, plus the retry-before-first-token loop.

A `ClientSession` is bound to the loop it was created on, and daphne, test runners and
`async_to_sync` each bring their own loop, so sessions are kept per loop. The pool is bounded
so a burst of chats queues for a connection instead of opening hundreds of sockets.
"""

from __future__ import annotations

import asyncio
import json
import random
import weakref
from collections.abc import AsyncIterator, Callable

import aiohttp

from chat.llm.base import Delta, LLMUnavailable, ProviderConfig

POOL_LIMIT = 100
_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)


def configure(*, pool_limit: int) -> None:
    """Set the pool size used by sessions created from now on."""
    global POOL_LIMIT
    POOL_LIMIT = pool_limit


def session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    current = _sessions.get(loop)
    if current is None or current.closed:
        connector = aiohttp.TCPConnector(limit=POOL_LIMIT, limit_per_host=POOL_LIMIT)
        # Per-request timeouts come from each provider's config; this is only the fallback.
        current = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120),
            raise_for_status=False,
        )
        _sessions[loop] = current
    return current


async def close_session() -> None:
    """Close this loop's session (server shutdown, test teardown)."""
    current = _sessions.pop(asyncio.get_running_loop(), None)
    if current is not None and not current.closed:
        await current.close()


def request_timeout(config: ProviderConfig) -> aiohttp.ClientTimeout:
    # No total: a long answer is fine as long as chunks keep coming.
    return aiohttp.ClientTimeout(
        total=None,
        connect=None,
        sock_connect=config.connect_timeout,
        sock_read=config.read_timeout,
    )


def backoff_delay(config: ProviderConfig, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; a server's Retry-After wins, within the cap."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), config.backoff_max)
    ceiling = min(config.backoff_max, config.backoff_base * (2**attempt))
    return random.uniform(ceiling / 2, ceiling)


def status_error(status: int, body: str, provider: str, retry_after: str | None) -> LLMUnavailable:
    reason = _short(body) or "no details"
    if status == 429:
        detail = f"The language model ({provider}) is rate limiting requests: {reason}."
    elif status >= 500:
        detail = f"The language model ({provider}) failed with HTTP {status}: {reason}."
    elif status in (401, 403):
        detail = f"The language model ({provider}) refused the credentials (HTTP {status})."
    elif status == 404:
        detail = f"The language model ({provider}) does not know that model or path: {reason}."
    else:
        detail = f"The language model ({provider}) rejected the request (HTTP {status}): {reason}."
    exc = LLMUnavailable(detail, retryable=status == 429 or status >= 500)
    exc.retry_after = _parse_retry_after(retry_after)
    return exc


def transport_error(exc: BaseException, provider: str) -> LLMUnavailable:
    """Map aiohttp/timeouts to a user-facing error; connection failures may be retried."""
    if isinstance(exc, aiohttp.SocketTimeoutError | asyncio.TimeoutError) and not isinstance(
        exc, aiohttp.ConnectionTimeoutError
    ):
        return LLMUnavailable(f"The language model ({provider}) stopped responding (timed out).")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return LLMUnavailable(
            f"The language model ({provider}) is unreachable: {exc}.", retryable=True
        )
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return LLMUnavailable(
            f"The language model ({provider}) closed the connection mid-answer.", retryable=True
        )
    return LLMUnavailable(f"The language model ({provider}) failed: {exc}.", retryable=True)


async def with_retries(
    config: ProviderConfig, attempt: Callable[[], AsyncIterator[Delta]]
) -> AsyncIterator[Delta]:
    """Run `attempt()`, retrying retryable failures only while no token has been yielded.

    After the first token a retry would repeat text the user already saw, so errors then
    propagate as they are.
    """
    tries = 0
    while True:
        started = False
        try:
            async for delta in attempt():
                if delta.text:
                    started = True
                yield delta
            return
        except LLMUnavailable as exc:
            if started or not exc.retryable or tries >= config.max_retries:
                raise
            delay = backoff_delay(config, tries, getattr(exc, "retry_after", None))
        tries += 1
        await asyncio.sleep(delay)


async def stream_post(
    config: ProviderConfig,
    url: str,
    body: dict,
    parse: Callable[[aiohttp.ClientResponse, str], AsyncIterator],
    headers: dict | None = None,
) -> AsyncIterator:
    """POST a streaming request and yield what `parse` reads from the response; a non-200 answer
    or a transport failure becomes LLMUnavailable (the shape `with_retries` retries on)."""
    name = config.name
    try:
        async with session().post(url, json=body, headers=headers, timeout=request_timeout(config)) as resp:
            if resp.status != 200:
                text = (await resp.content.read(4096)).decode(errors="replace")
                raise status_error(resp.status, text, name, resp.headers.get("Retry-After"))
            async for item in parse(resp, name):
                yield item
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise transport_error(exc, name) from exc


async def get_json(config: ProviderConfig, url: str, headers: dict | None = None) -> dict:
    """One GET with the provider's timeouts; any failure becomes LLMUnavailable."""
    try:
        async with session().get(
            url, headers=headers, timeout=request_timeout(config)
        ) as resp:
            if resp.status != 200:
                text = (await resp.content.read(4096)).decode(errors="replace")
                raise status_error(resp.status, text, config.name, None)
            data = await resp.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise transport_error(exc, config.name) from exc
    except ValueError as exc:
        raise LLMUnavailable(f"The language model ({config.name}) sent a malformed response.") from exc
    if not isinstance(data, dict):
        raise LLMUnavailable(f"The language model ({config.name}) sent a malformed response.")
    return data


def _parse_retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def _short(body: str, limit: int = 200) -> str:
    text = body.strip()
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            err = data.get("error", data.get("detail", text))
            text = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except ValueError:
        pass
    return text[:limit].rstrip(". ")
