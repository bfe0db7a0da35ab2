"""What a detection pass reports: per document, and totals over a run (chunks merge into it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DocumentOutcome:
    status: str  # 'ok' | 'failed' | 'skipped'
    reason: str = ""
    anomalies: int = 0
    by_severity: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "anomalies": self.anomalies,
            "by_severity": dict(self.by_severity),
        }


@dataclass
class DetectionRunSummary:
    """What a detection pass did; ``merge`` adds another pass (chunks of one run)."""

    per_document: dict[int, DocumentOutcome] = field(default_factory=dict)
    property_ids: list[int] = field(default_factory=list)
    lines_scored: int = 0
    insufficient_history: int = 0
    anomalies: int = 0
    anomalies_by_severity: dict[str, int] = field(default_factory=dict)
    anomalies_by_property: dict[str, int] = field(default_factory=dict)  # property code -> count
    series_modelled: int = 0
    detectors: dict[str, int] = field(default_factory=dict)  # detector name -> lines scored
    rows_written: int = 0  # detection and explanation rows written or deleted (a rerun over unchanged inputs: 0)
    duration_seconds: float = 0.0

    @property
    def documents_ok(self) -> int:
        return sum(1 for o in self.per_document.values() if o.status == "ok")

    @property
    def documents_failed(self) -> int:
        return sum(1 for o in self.per_document.values() if o.status == "failed")

    @property
    def documents_skipped(self) -> int:
        return sum(1 for o in self.per_document.values() if o.status == "skipped")

    @property
    def failures(self) -> dict[int, str]:
        return {doc: o.reason for doc, o in self.per_document.items() if o.status == "failed"}

    def add_count(self, counter: dict[str, int], key: str, n: int = 1) -> None:
        counter[key] = counter.get(key, 0) + n

    def merge(self, other: DetectionRunSummary) -> None:
        self.per_document.update(other.per_document)
        self.property_ids = sorted(set(self.property_ids) | set(other.property_ids))
        self.lines_scored += other.lines_scored
        self.insufficient_history += other.insufficient_history
        self.anomalies += other.anomalies
        self.series_modelled += other.series_modelled
        self.rows_written += other.rows_written
        for target, source in (
            (self.anomalies_by_severity, other.anomalies_by_severity),
            (self.anomalies_by_property, other.anomalies_by_property),
            (self.detectors, other.detectors),
        ):
            for key, value in source.items():
                self.add_count(target, key, value)
        self.duration_seconds += other.duration_seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": len(self.per_document),
            "documents_ok": self.documents_ok,
            "documents_failed": self.documents_failed,
            "documents_skipped": self.documents_skipped,
            "property_ids": list(self.property_ids),
            "lines_scored": self.lines_scored,
            "insufficient_history": self.insufficient_history,
            "anomalies": self.anomalies,
            "anomalies_by_severity": dict(self.anomalies_by_severity),
            "anomalies_by_property": dict(self.anomalies_by_property),
            "series_modelled": self.series_modelled,
            "detectors": dict(self.detectors),
            "rows_written": self.rows_written,
            "failures": {str(k): v for k, v in self.failures.items()},
            "duration_seconds": round(self.duration_seconds, 3),
        }
