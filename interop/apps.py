from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "interop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from chat import tools
        from interop import mcp_client

        if mcp_client.tools_for not in tools.PROVIDERS:
            tools.PROVIDERS.append(mcp_client.tools_for)
