from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "chaton.security"
    label = "security"
    verbose_name = "Second factors"
