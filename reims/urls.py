"""URL configuration: the admin console, the API under /api/v1/ (its root lists every endpoint), its
schema and offline docs (Swagger UI, Redoc), and /healthz."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from reims.api import ApiRootApi, FeatureFlagListApi, healthz

api_v1 = [
    path("", ApiRootApi.as_view(), name="root"),
    path("feature-flags/", FeatureFlagListApi.as_view(), name="feature-flags"),
    path("", include("documents.urls")),
    path("", include("anomalies.urls")),
    path("", include("batch_jobs.urls")),
    path("", include("modelcache.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Split view: Swagger UI's start-up script is a static-like URL, not an inline <script>.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api-auth/", include("rest_framework.urls")),
    path("healthz", healthz, name="healthz"),
]
