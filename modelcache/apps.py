from django.apps import AppConfig


class ModelCacheConfig(AppConfig):
    name = "modelcache"
    verbose_name = "Model cache"

    def ready(self) -> None:
        from django.conf import settings

        from modelcache import numba_cache

        numba_cache.enable(settings.NUMBA_CACHE_DIR)
