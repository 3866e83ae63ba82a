from django.apps import AppConfig


class AutobotConfig(AppConfig):
    name = "autobot"
    verbose_name = "AutoBot platform"

    def ready(self):
        from autobot import checks, logs  # noqa: F401  (checks registers the deploy checks)

        logs.install()
