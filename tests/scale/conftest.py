"""Scale-out tests: the chat's fake LLM and the terminal's fixtures, reused."""

from tests.chat.conftest import fake_llm, llm  # noqa: F401 - fixtures
from tests.terminal.conftest import _terminal_settings, grant_terminal, terminal_user  # noqa: F401 - fixtures
