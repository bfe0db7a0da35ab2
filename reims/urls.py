"""URL configuration: the admin console, the API under /api/v1/, its schema, and /healthz."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from reims.api import FeatureFlagListApi, healthz

api_v1 = [
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
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
    path("healthz", healthz, name="healthz"),
]
