"""Chat fixtures: a fake LLM on loopback and a provider registry pointing at it."""

import pytest

from chat.generation import answers
from chat.llm import http
from chat.llm.base import ProviderConfig
from chat.llm.registry import Registry, use_registry
from tests.chat.fake_llm import FakeLLM

FAST = {"backoff_base": 0.001, "backoff_max": 0.01, "read_timeout": 5.0, "connect_timeout": 2.0, "max_retries": 2}


@pytest.fixture
async def fake_llm():
    async with FakeLLM() as fake:
        yield fake
    await http.close_session()


def fake_registry(url: str, **overrides) -> Registry:
    options = {**FAST, **overrides}
    return Registry(
        [
            ProviderConfig(name="fake", kind="ollama", base_url=url, model="fake-small", **options),
            ProviderConfig(name="fakeai", kind="openai", base_url=url, model="fake-large", **options),
        ],
        default="fake",
    )


@pytest.fixture
async def llm(fake_llm):
    """The fake LLM, installed as the configured providers ("fake" = Ollama, "fakeai" = OpenAI)."""
    use_registry(fake_registry(fake_llm.url))
    yield fake_llm
    # Nothing may outlive the test's event loop; the next test's answers are admitted again.
    await answers.stop_all()
    answers.reopen()
    use_registry(None)


@pytest.fixture
def offline():
    use_registry(Registry([], default="offline"))
    yield
    use_registry(None)
