"""API routes of this app, mounted under /api/v1/ by reims/urls.py."""

from django.urls import path

from anomalies import api_structure, apis

urlpatterns = [
    path("anomalies/", apis.AnomalyListApi.as_view(), name="anomaly-list"),
    # Before anomalies/<id> so that "algorithms" is never read as an id.
    path("anomalies/algorithms", apis.AlgorithmListApi.as_view(), name="anomaly-algorithms"),
    path("anomalies/structure", api_structure.StatementStructureApi.as_view(), name="anomaly-structure"),
    path("anomalies/<int:pk>", apis.AnomalyDetailApi.as_view(), name="anomaly-detail"),
    path("anomalies/<int:pk>/feedback", apis.AnomalyFeedbackApi.as_view(), name="anomaly-feedback"),
    path("selection-log/", apis.SelectionLogListApi.as_view(), name="selection-log"),
]
