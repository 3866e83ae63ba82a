"""Provider configuration, model references and the offline provider (no Django needed)."""

import json

import pytest

from chat.llm import http
from chat.llm.base import LLMUnavailable
from chat.llm.offline import OfflineProvider
from chat.llm.registry import ConfigError, Registry
from tests.chat.fake_llm import FakeLLM


def test_no_configuration_means_offline():
    registry = Registry.from_settings()
    assert registry.default == "offline"
    resolved = registry.resolve("")
    assert resolved.config.kind == "offline" and resolved.ref == "offline/knowledge-base"


def test_the_primary_provider_is_named_after_its_kind():
    registry = Registry.from_settings(provider="ollama", base_url="http://x", model="llama3:8b")
    assert registry.default == "ollama"
    assert registry.resolve(None).ref == "ollama/llama3:8b"
    assert registry.resolve("mistral:7b").ref == "ollama/mistral:7b"
    assert registry.resolve("offline/anything").ref == "offline/knowledge-base"


def test_named_providers_from_json_and_slashes_in_model_names():
    providers = {
        "local": {"kind": "ollama", "base_url": "http://a", "model": "llama3"},
        "cloud": {"kind": "openai", "base_url": "http://b/v1", "model": "gpt", "read_timeout": 9},
    }
    registry = Registry.from_settings(provider="cloud", providers_json=json.dumps(providers))

    assert registry.default == "cloud"
    assert registry.resolve("local/").ref == "local/llama3"
    resolved = registry.resolve("cloud/meta-llama/Llama-3-8b")
    assert resolved.model == "meta-llama/Llama-3-8b" and resolved.config.read_timeout == 9
    assert registry.resolve("meta-llama/Llama-3-8b").ref == "cloud/meta-llama/Llama-3-8b"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"provider": "gpt5"}, "unknown LLM provider"),
        ({"providers_json": "{nope"}, "not valid JSON"),
        ({"providers_json": '{"x": {"kind": "bard"}}'}, "unknown kind"),
        ({"providers_json": "[1]"}, "JSON object"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Registry.from_settings(**kwargs)


def test_a_provider_without_a_model_asks_for_one():
    registry = Registry.from_settings(provider="openai", base_url="http://x")
    with pytest.raises(LLMUnavailable, match="AUTOBOT_LLM_MODEL"):
        registry.resolve("")


async def test_models_lists_every_provider_and_marks_unreachable_ones(unused_tcp_port):
    async with FakeLLM() as fake:
        providers = {
            "up": {"kind": "openai", "base_url": fake.url, "model": "fake-small"},
            "down": {"kind": "ollama", "base_url": f"http://127.0.0.1:{unused_tcp_port}",
                     "model": "llama3", "max_retries": 0},
        }
        registry = Registry.from_settings(provider="up", providers_json=providers)
        listing = {m["id"]: m for m in await registry.models()}
    await http.close_session()

    assert listing["up/fake-small"]["default"] and listing["up/fake-small"]["available"]
    assert listing["up/fake-large"]["available"]
    assert not listing["down/llama3"]["available"]
    assert "unreachable" in listing["down/llama3"]["error"]
    assert listing["offline/knowledge-base"]["kind"] == "offline"


async def test_offline_answers_with_passages_citations_and_how_to_configure():
    asked = []

    async def retrieve(query):
        asked.append(query)
        return [
            {"entry_id": 7, "title": "Backups", "source": "https://wiki/backups",
             "snippet": "use <mark>restic</mark>", "content": "Use restic nightly [x](javascript:1)",
             "heading_path": ["Ops", "Backups"], "score": 1.0},
        ]

    provider = OfflineProvider(Registry.from_settings().configs["offline"], retrieve)
    deltas = [d async for d in provider.stream([{"role": "user", "content": "how to back up?"}])]

    answer = "".join(d.text for d in deltas)
    assert asked == ["how to back up?"]
    assert "No language model is configured" in answer
    assert "AUTOBOT_LLM_PROVIDER" in answer and "AUTOBOT_LLM_BASE_URL" in answer
    assert "Backups" in answer and "Use restic nightly" in answer
    assert "\\[x\\]" in answer  # knowledge text cannot inject links
    assert deltas[-1].done
    assert deltas[-1].citations == (
        {"entry_id": 7, "title": "Backups", "source": "https://wiki/backups",
         "snippet": "use <mark>restic</mark>"},
    )


async def test_offline_survives_a_broken_knowledge_base():
    async def retrieve(query):
        raise RuntimeError("index missing")

    provider = OfflineProvider(Registry.from_settings().configs["offline"], retrieve)
    deltas = [d async for d in provider.stream([{"role": "user", "content": "hi"}])]
    assert "No language model is configured" in "".join(d.text for d in deltas)
    assert deltas[-1].citations == ()
