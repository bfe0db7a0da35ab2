"""Reads of the anomalies app, by concept.

* ``detection_input``: a chunk's engine input (its properties' lines, peers, verdicts, data versions);
* ``listing``: detections, selection logs and the export for the API, admin and commands;
* ``console``: an anomaly's series, its source boxes in the PDF, a property's heatmap.

The names below are the public import paths (``from anomalies.selectors import anomaly_list``).
"""

from anomalies.selectors.console import (
    HeatmapCell,
    PropertyHeatmap,
    SeriesPoint,
    anomaly_series,
    detection_source_boxes,
    property_anomaly_heatmap,
)
from anomalies.selectors.detection_input import (
    DetectionInput,
    PropertyDataVersion,
    TargetDocument,
    feedback_for_property,
    portfolio_peer_stats,
    property_data_versions,
    property_lines_get,
    target_documents_get,
    verdicts_for_learning,
)
from anomalies.selectors.listing import (
    EXPORT_COLUMNS,
    account_name_expression,
    anomaly_get,
    anomaly_list,
    export_rows,
    line_coordinates,
    selection_log_list,
    selection_source_counts,
)

__all__ = [
    "EXPORT_COLUMNS",
    "DetectionInput",
    "HeatmapCell",
    "PropertyDataVersion",
    "PropertyHeatmap",
    "SeriesPoint",
    "TargetDocument",
    "account_name_expression",
    "anomaly_get",
    "anomaly_list",
    "anomaly_series",
    "detection_source_boxes",
    "export_rows",
    "feedback_for_property",
    "line_coordinates",
    "portfolio_peer_stats",
    "property_data_versions",
    "property_lines_get",
    "property_anomaly_heatmap",
    "selection_log_list",
    "selection_source_counts",
    "target_documents_get",
    "verdicts_for_learning",
]
