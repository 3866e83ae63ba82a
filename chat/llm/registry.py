"""The configured providers, by name, and how a session's model string maps onto them.

A model reference is `"<provider name>/<model>"` (e.g. `"local/llama3:8b"`); a bare model
name means the default provider. Model names may themselves contain slashes
(`"cloud/meta-llama/Llama-3-8b"`): only the first segment is ever taken as a provider name.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace

from chat.llm.base import LLMUnavailable, Provider, ProviderConfig
from chat.llm.offline import MODEL_NAME as OFFLINE_MODEL
from chat.llm.offline import OfflineProvider, Retrieve
from chat.llm.ollama import OllamaProvider
from chat.llm.openai import OpenAIProvider

KINDS = {"ollama": OllamaProvider, "openai": OpenAIProvider, "offline": OfflineProvider}


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Resolved:
    config: ProviderConfig
    model: str

    @property
    def ref(self) -> str:
        return f"{self.config.name}/{self.model}"


class Registry:
    def __init__(self, configs: list[ProviderConfig], default: str):
        self.configs = {c.name: c for c in configs}
        if "offline" not in self.configs:
            self.configs["offline"] = ProviderConfig(name="offline", kind="offline")
        if default not in self.configs:
            raise ConfigError(f"default LLM provider {default!r} is not configured")
        self.default = default
        self._providers: dict[str, Provider] = {}

    @classmethod
    def from_settings(
        cls,
        *,
        provider: str = "",
        base_url: str = "",
        api_key: str = "",
        model: str = "",
        providers_json: str | dict | None = None,
        **common,
    ) -> Registry:
        """Build from the AUTOBOT_LLM_* values; `common` holds shared timeouts/retries."""
        named = _parse_named(providers_json, common)
        provider = (provider or "").strip()
        if provider in {c.name for c in named}:
            default = provider
        elif provider in KINDS:
            named.insert(0, _config(provider, provider, base_url, api_key, model, common))
            default = provider
        elif provider:
            raise ConfigError(f"unknown LLM provider {provider!r}; use one of {sorted(KINDS)}")
        else:
            default = named[0].name if named else "offline"
        return cls(named, default)

    def resolve(self, ref: str | None) -> Resolved:
        ref = (ref or "").strip()
        name, _, rest = ref.partition("/")
        if name in self.configs:
            config, model = self.configs[name], rest
        else:
            config, model = self.configs[self.default], ref
        if config.kind == "offline":
            model = OFFLINE_MODEL
        model = model or config.model
        if not model:
            raise LLMUnavailable(
                f"No model is set for the language model provider {config.name!r}; "
                "set AUTOBOT_LLM_MODEL or pick a model."
            )
        return Resolved(config, model)

    def provider(self, name: str, *, retrieve: Retrieve | None = None) -> Provider:
        config = self.configs[name]
        if config.kind == "offline":
            return OfflineProvider(config, retrieve)  # per call: retrieval is per user
        if name not in self._providers:
            self._providers[name] = KINDS[config.kind](config)
        return self._providers[name]

    async def models(self) -> list[dict]:
        """Every provider's models; an unreachable provider is listed with its error."""
        names = list(self.configs)
        results = await asyncio.gather(
            *(self.provider(n).models() for n in names), return_exceptions=True
        )
        listing = []
        for name, result in zip(names, results, strict=True):
            config = self.configs[name]
            if isinstance(result, BaseException):
                error = result.detail if isinstance(result, LLMUnavailable) else str(result)
                models = [config.model] if config.model else []
            else:
                error, models = None, list(result)
                if config.model and config.model not in models and config.kind != "offline":
                    models.insert(0, config.model)
            for model in models:
                listing.append(
                    {
                        "id": f"{name}/{model}",
                        "provider": name,
                        "kind": config.kind,
                        "model": model,
                        "default": name == self.default
                        and model == (config.model or OFFLINE_MODEL),
                        "available": error is None,
                        "error": error,
                    }
                )
            if not models:
                listing.append(
                    {"id": f"{name}/", "provider": name, "kind": config.kind, "model": "",
                     "default": False, "available": False, "error": error}
                )
        return listing


def _config(name, kind, base_url, api_key, model, common) -> ProviderConfig:
    if kind not in KINDS:
        raise ConfigError(f"LLM provider {name!r} has unknown kind {kind!r}")
    base = ProviderConfig(name=name, kind=kind, base_url=base_url or "", api_key=api_key or "",
                          model=model or "")
    return replace(base, **{k: v for k, v in common.items() if v is not None})


def _parse_named(raw: str | dict | None, common: dict) -> list[ProviderConfig]:
    """AUTOBOT_LLM_PROVIDERS: `{"local": {"kind": "ollama", "base_url": …, "model": …}, …}`."""
    if not raw:
        return []
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise ConfigError(f"AUTOBOT_LLM_PROVIDERS is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("AUTOBOT_LLM_PROVIDERS must be a JSON object of name → settings")
    configs = []
    for name, spec in data.items():
        if "/" in name or not isinstance(spec, dict):
            raise ConfigError(f"AUTOBOT_LLM_PROVIDERS entry {name!r} is invalid")
        kind = spec.get("kind") or spec.get("provider") or ""
        overrides = {k: spec[k] for k in ("connect_timeout", "read_timeout", "max_retries",
                                          "context_tokens") if k in spec}
        configs.append(
            _config(name, kind, spec.get("base_url"), spec.get("api_key"), spec.get("model"),
                    {**common, **overrides})
        )
    return configs


_registry: Registry | None = None


def get_registry() -> Registry:
    """The registry built from Django settings (cached; tests call `reset_registry`)."""
    global _registry
    if _registry is None:
        from django.conf import settings

        _registry = Registry.from_settings(
            provider=settings.CHAT_LLM_PROVIDER,
            base_url=settings.CHAT_LLM_BASE_URL,
            api_key=settings.CHAT_LLM_API_KEY,
            model=settings.CHAT_LLM_MODEL,
            providers_json=settings.CHAT_LLM_PROVIDERS,
            connect_timeout=settings.CHAT_LLM_CONNECT_TIMEOUT,
            read_timeout=settings.CHAT_LLM_READ_TIMEOUT,
            max_retries=settings.CHAT_LLM_MAX_RETRIES,
            context_tokens=settings.CHAT_LLM_CONTEXT_TOKENS,
        )
    return _registry


def reset_registry() -> None:
    global _registry
    _registry = None


def use_registry(registry: Registry | None) -> None:
    """Install a registry built by hand (tests, embedding); None goes back to settings."""
    global _registry
    _registry = registry
