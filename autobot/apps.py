from django.apps import AppConfig


class AutobotConfig(AppConfig):
    name = "autobot"
    verbose_name = "AutoBot platform"

    def ready(self) -> None:
        # checks registers the deploy checks, middleware its own system check.
        from autobot import astguard, checks, logs, middleware, revocation  # noqa: F401

        astguard.install()
        logs.install()
        revocation.connect()
