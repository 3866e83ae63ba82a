from django.apps import AppConfig


class AutobotConfig(AppConfig):
    name = "autobot"
    verbose_name = "AutoBot platform"
