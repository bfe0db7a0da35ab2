"""API routes of this app, mounted under /api/v1/ by reims/urls.py."""

from django.urls import path

from documents.apis import DocumentDetailApi, DocumentListApi

urlpatterns = [
    path("documents/", DocumentListApi.as_view(), name="documents"),
    path("documents/<int:document_id>/", DocumentDetailApi.as_view(), name="document-detail"),
]
