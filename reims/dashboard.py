"""What the console's dashboard shows. Reads only; each figure comes from its app's selector."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from anomalies.models import AnomalyDetection, DetectionStatus, Severity
from anomalies.selectors import selection_source_counts
from batch_jobs.models import JobStatus
from batch_jobs.selectors import job_list
from kernel.flags import FeatureFlags
from modelcache.selectors import model_cache_stats

SEVERITY_ORDER = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW]


def anomaly_counts(*, user: Any) -> dict[str, Any]:
    """Flagged anomalies the user sees by severity (open ones and all) and by status, in one query each."""
    flagged = AnomalyDetection.objects.visible_to(user).filter(is_anomaly=True)
    by_severity = flagged.aggregate(
        **{f"{s.value}_open": Count("id", filter=Q(severity=s, status=DetectionStatus.OPEN)) for s in SEVERITY_ORDER},
        **{f"{s.value}_all": Count("id", filter=Q(severity=s)) for s in SEVERITY_ORDER},
    )
    by_status = dict(flagged.values_list("status").annotate(n=Count("id")).order_by())
    return {
        "severity": [
            {"name": s.value, "label": s.label, "open": by_severity[f"{s.value}_open"], "all": by_severity[f"{s.value}_all"]}
            for s in SEVERITY_ORDER
        ],
        "status": [
            {"name": value, "label": label, "count": by_status.get(value, 0)} for value, label in DetectionStatus.choices
        ],
        "open_total": sum(by_severity[f"{s.value}_open"] for s in SEVERITY_ORDER),
    }


def properties_with_most_open_anomalies(*, user: Any, limit: int = 10) -> list[dict[str, Any]]:
    """Ranked by open anomalies (what is left to review); critical, then high, break ties."""
    rows = (
        AnomalyDetection.objects.visible_to(user)
        .filter(is_anomaly=True, status=DetectionStatus.OPEN)
        .values("property_id", "property__code", "property__name")
        .annotate(
            open=Count("id"),
            critical=Count("id", filter=Q(severity=Severity.CRITICAL)),
            high=Count("id", filter=Q(severity=Severity.HIGH)),
        )
        .order_by("-open", "-critical", "-high", "property__code")[:limit]
    )
    return list(rows)


def dashboard_context(*, user: Any) -> dict[str, Any]:
    jobs = job_list(user=user)
    return {
        "anomalies": anomaly_counts(user=user),
        "top_properties": properties_with_most_open_anomalies(user=user),
        "running_jobs": list(jobs.filter(status__in=[JobStatus.RUNNING, JobStatus.QUEUED])[:10]),
        "recent_jobs": list(jobs.exclude(status__in=[JobStatus.RUNNING, JobStatus.QUEUED])[:5]),
        "cache": model_cache_stats(),
        "selection": selection_source_counts(user=user),
        "flags": FeatureFlags.describe(),
    }
