from django.apps import AppConfig


class AutobotConfig(AppConfig):
    name = "autobot"
    verbose_name = "AutoBot platform"

    def ready(self) -> None:
        from autobot import middleware  # noqa: F401 - registers its system check
