from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "chaton.core"
    label = "core"
    verbose_name = "Chaton core"
