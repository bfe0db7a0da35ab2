"""API routes of this app, mounted under /api/v1/ by reims/urls.py (no trailing slashes, as DESIGN §6)."""

from django.urls import path

from batch_jobs.apis import BatchJobCreateApi, BatchJobViewSet

urlpatterns = [
    path("batch-reprocessing/reprocess", BatchJobCreateApi.as_view(), name="batch-reprocess"),
    path("batch-reprocessing/jobs", BatchJobViewSet.as_view({"get": "list"}), name="batch-jobs-list"),
    path("batch-reprocessing/jobs/<int:pk>", BatchJobViewSet.as_view({"get": "retrieve"}), name="batch-jobs-detail"),
    path(
        "batch-reprocessing/jobs/<int:pk>/cancel",
        BatchJobViewSet.as_view({"post": "cancel"}),
        name="batch-jobs-cancel",
    ),
]
