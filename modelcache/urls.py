"""API routes of this app, mounted under /api/v1/ by reims/urls.py."""

from django.urls import path

from modelcache.apis import ModelCacheInvalidateApi, ModelCacheListApi, ModelCacheStatsApi

urlpatterns = [
    path("model-cache/", ModelCacheListApi.as_view(), name="model-cache-list"),
    path("model-cache/stats", ModelCacheStatsApi.as_view(), name="model-cache-stats"),
    path("model-cache/<int:pk>/invalidate", ModelCacheInvalidateApi.as_view(), name="model-cache-invalidate"),
]
