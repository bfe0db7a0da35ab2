from django.apps import AppConfig


class ModelCacheConfig(AppConfig):
    name = "modelcache"
    verbose_name = "Model cache"
