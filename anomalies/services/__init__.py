"""Writes of the anomalies app, by concept.

* ``detection``: detection passes (``documents_detect`` for a chunk, ``detection_run`` for many);
* ``results``: the engine's result as one ``ScoredLine`` per target line;
* ``feedback``: analyst verdicts (``anomaly_feedback_submit``) and the rules every pass applies;
* ``writing``: a chunk's detections written in one transaction;
* ``options`` / ``summaries``: the engine's options for a pass, and what a pass reports.

The names below are the public import paths (``from anomalies.services import documents_detect``).
"""

from anomalies.services.detection import RUN_PROPERTIES_PER_GROUP, detection_run, documents_detect
from anomalies.services.feedback import (
    FEEDBACK_IS_ANOMALY,
    FEEDBACK_NOTES_MAX_LENGTH,
    FEEDBACK_STATUS,
    NEW_NORMAL_SEPARATOR,
    NotFoundError,
    anomalies_feedback_bulk,
    anomaly_feedback_submit,
    verdict_apply,
)
from anomalies.services.options import EngineOptions, engine_options, model_provider
from anomalies.services.results import EngineOutput, ScoredLine
from anomalies.services.summaries import DetectionRunSummary, DocumentOutcome

__all__ = [
    "FEEDBACK_IS_ANOMALY",
    "FEEDBACK_NOTES_MAX_LENGTH",
    "FEEDBACK_STATUS",
    "NEW_NORMAL_SEPARATOR",
    "RUN_PROPERTIES_PER_GROUP",
    "DetectionRunSummary",
    "DocumentOutcome",
    "EngineOptions",
    "EngineOutput",
    "NotFoundError",
    "ScoredLine",
    "anomalies_feedback_bulk",
    "anomaly_feedback_submit",
    "detection_run",
    "documents_detect",
    "engine_options",
    "model_provider",
    "verdict_apply",
]
