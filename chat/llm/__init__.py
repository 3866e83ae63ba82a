"""Language-model providers: one streaming interface, no Django imports."""

from chat.llm.base import Delta, LLMUnavailable, Provider, ProviderConfig

__all__ = ["Delta", "LLMUnavailable", "Provider", "ProviderConfig"]
