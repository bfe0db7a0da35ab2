"""API routes of this app, mounted under /api/v1/ by reims/urls.py."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from batch_jobs.apis import BatchJobCreateApi, BatchJobViewSet

router = SimpleRouter(trailing_slash="/?")
router.register("batch-reprocessing/jobs", BatchJobViewSet, basename="batch-jobs")

urlpatterns: list = [
    path("batch-reprocessing/reprocess", BatchJobCreateApi.as_view(), name="batch-reprocess"),
    path("", include(router.urls)),
]
