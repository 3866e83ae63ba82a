"""Providers against the fake LLM: a real aiohttp server on loopback, no mocks."""

import asyncio
import contextlib

import pytest

from chat.llm import http
from chat.llm.base import LLMUnavailable, ProviderConfig
from chat.llm.ollama import OllamaProvider
from chat.llm.openai import OpenAIProvider
from tests.chat.fake_llm import FakeLLM

FAST = {"backoff_base": 0.001, "backoff_max": 0.01, "read_timeout": 5.0, "connect_timeout": 2.0}
KINDS = {"ollama": OllamaProvider, "openai": OpenAIProvider}
USER = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def fake():
    async with FakeLLM() as server:
        yield server
    await http.close_session()


def make(kind: str, url: str, **overrides):
    config = ProviderConfig(name=kind, kind=kind, base_url=url, model="fake-small",
                            **{**FAST, **overrides})
    return KINDS[kind](config)


async def collect(provider, messages=USER, **kwargs):
    deltas = []
    async for delta in provider.stream(messages, **kwargs):
        deltas.append(delta)
    return deltas


def text(deltas):
    return "".join(d.text for d in deltas)


@pytest.fixture(params=["ollama", "openai"])
def kind(request):
    return request.param


async def test_it_streams_tokens_then_one_usage_event(fake, kind):
    deltas = await collect(make(kind, fake.url))

    assert text(deltas) == "Echo: hello there"
    assert len([d for d in deltas if d.text]) == 3
    assert [d.done for d in deltas].count(True) == 1 and deltas[-1].done
    assert deltas[-1].completion_tokens == 3
    assert deltas[-1].prompt_tokens == 2
    assert deltas[-1].model == "fake-small"


async def test_it_sends_messages_model_and_options(fake, kind):
    await collect(make(kind, fake.url), model="fake-large",
                  options={"temperature": 0.2, "max_tokens": 5})

    body = fake.requests[-1]
    assert body["model"] == "fake-large" and body["messages"] == USER and body["stream"] is True
    if kind == "ollama":
        assert body["options"] == {"num_ctx": 8192, "temperature": 0.2, "num_predict": 5}
    else:
        assert body["temperature"] == 0.2 and body["max_tokens"] == 5


async def test_it_lists_models(fake, kind):
    assert await make(kind, fake.url).models() == ["fake-large", "fake-small"]


async def test_openai_sends_the_api_key_only_when_set(fake):
    await collect(make("openai", fake.url))
    assert "Authorization" not in fake.headers[-1]

    fake.api_key = "sk-test"
    await collect(make("openai", fake.url, api_key="sk-test"))
    assert fake.headers[-1]["Authorization"] == "Bearer sk-test"


async def test_openai_accepts_a_base_url_ending_in_v1(fake):
    assert text(await collect(make("openai", fake.url + "/v1"))) == "Echo: hello there"


async def test_a_wrong_api_key_is_a_clear_error_without_retries(fake):
    fake.api_key = "right"
    with pytest.raises(LLMUnavailable, match="refused the credentials") as info:
        await collect(make("openai", fake.url, api_key="wrong"))
    assert info.value.code == "llm_unavailable"
    assert len(fake.requests) == 1


async def test_it_retries_500_and_429_before_the_first_token(fake, kind):
    fake.failures = [500, 429, 503]
    fake.retry_after = "0"

    deltas = await collect(make(kind, fake.url, max_retries=3))

    assert text(deltas) == "Echo: hello there"
    assert len(fake.requests) == 4


async def test_it_gives_up_after_max_retries_with_llm_unavailable(fake, kind):
    fake.failures = [500] * 10

    with pytest.raises(LLMUnavailable, match="HTTP 500") as info:
        await collect(make(kind, fake.url, max_retries=2))

    assert info.value.code == "llm_unavailable"
    assert len(fake.requests) == 3


async def test_rate_limiting_is_named_in_the_error(fake, kind):
    fake.failures = [429] * 5
    with pytest.raises(LLMUnavailable, match="rate limiting"):
        await collect(make(kind, fake.url, max_retries=1))


async def test_an_unknown_model_is_not_retried(fake, kind):
    with pytest.raises(LLMUnavailable, match="does not know"):
        await collect(make(kind, fake.url), model="nope")
    assert len(fake.requests) == 1


async def test_a_provider_that_is_down_is_retried_then_reported(kind, unused_tcp_port):
    provider = make(kind, f"http://127.0.0.1:{unused_tcp_port}", max_retries=2)
    with pytest.raises(LLMUnavailable, match="unreachable"):
        await collect(provider)
    with pytest.raises(LLMUnavailable, match="unreachable"):
        await provider.models()
    await http.close_session()


async def test_a_close_before_the_first_token_is_retried(fake, kind):
    fake.disconnect_after = 0
    fake.faulty_requests = 1

    deltas = await collect(make(kind, fake.url, max_retries=2))

    assert text(deltas) == "Echo: hello there"
    assert len(fake.requests) == 2


async def test_a_close_mid_stream_is_reported_and_never_retried(fake, kind):
    fake.tokens = ["one ", "two ", "three ", "four"]
    fake.disconnect_after = 2
    seen = []

    with pytest.raises(LLMUnavailable, match="closed the connection mid-answer"):
        async for delta in make(kind, fake.url, max_retries=3).stream(USER):
            seen.append(delta.text)

    assert "".join(seen) == "one two "
    assert len(fake.requests) == 1


async def test_malformed_json_is_a_clear_error(fake, kind):
    fake.malformed_after = 1
    seen = []
    with pytest.raises(LLMUnavailable, match="malformed response"):
        async for delta in make(kind, fake.url).stream(USER):
            seen.append(delta.text)
    assert seen == ["Echo:"]
    assert len(fake.requests) == 1


async def test_a_slow_provider_times_out_between_chunks(fake, kind):
    fake.stall_after = 1
    seen = []
    with pytest.raises(LLMUnavailable, match="stopped responding"):
        async for delta in make(kind, fake.url, read_timeout=0.3).stream(USER):
            seen.append(delta.text)
    assert seen == ["Echo:"]


async def test_a_slow_provider_within_the_timeout_is_fine(fake, kind):
    fake.delay = 0.02
    assert text(await collect(make(kind, fake.url, read_timeout=5))) == "Echo: hello there"


async def test_cancelling_the_consumer_closes_the_upstream_request(fake, kind):
    fake.pause_after = 1  # one token, then the fake waits forever for `resume`
    first = asyncio.Event()

    async def consume():
        async for delta in make(kind, fake.url).stream(USER):
            if delta.text:
                first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    await asyncio.wait_for(fake.client_gone.wait(), 5)
    assert fake.disconnects == 1 and fake.completed == 0


async def test_closing_the_stream_early_closes_the_upstream_request(fake, kind):
    fake.pause_after = 1
    stream = make(kind, fake.url).stream(USER)
    async with contextlib.aclosing(stream):
        async for delta in stream:
            if delta.text:
                break
    await asyncio.wait_for(fake.client_gone.wait(), 5)
    assert fake.disconnects == 1


async def test_one_session_per_loop_is_shared_and_replaced_when_closed(fake):
    first = http.session()
    assert http.session() is first
    await http.close_session()
    assert first.closed and http.session() is not first


async def test_fifty_concurrent_streams_all_finish(fake, kind):
    fake.delay = 0.005
    provider = make(kind, fake.url)
    prompts = [[{"role": "user", "content": f"question {n}"}] for n in range(50)]

    results = await asyncio.gather(*(collect(provider, p) for p in prompts))

    assert [text(r) for r in results] == [f"Echo: question {n}" for n in range(50)]
    assert fake.completed == 50
