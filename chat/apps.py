from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class ChatConfig(AppConfig):
    name = "chat"

    def ready(self) -> None:
        from django.conf import settings

        from chat.llm import http
        from chat.llm.registry import ConfigError, get_registry

        http.configure(pool_limit=settings.CHAT_LLM_POOL_SIZE)
        try:
            get_registry()  # a bad AUTOBOT_LLM_* value fails at start-up, not on first chat
        except ConfigError as exc:
            raise ImproperlyConfigured(str(exc)) from exc
