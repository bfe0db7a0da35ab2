from django.apps import AppConfig


class ReimsConfig(AppConfig):
    name = "reims"
    verbose_name = "REIMS"
