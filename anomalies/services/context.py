"""A property's detection context, computed once per data version and kept by the worker process.

A batch job's chunk is ten consecutive documents of one property. The engine's result for any of
them depends on the whole property (its every statement and month), the portfolio's peer
statistics and the analysts' verdicts, never on which documents share the chunk. So the first
chunk of a property loads the property's lines and runs the engine over all of them, and the
result is kept, keyed by the property's data version (``selectors.PropertyDataVersion``: its
latest documents, its verdicts, the portfolio's fingerprint) and the pass's options; the
property's later chunks read their documents' rows out of it. A new document version, a verdict,
a changed flag or a changed portfolio makes a new key, and the next chunk computes afresh.

The cache is per process (a Celery worker child, the command's process) and bounded by the table
rows it holds (``CONTEXT_CACHE_MAX_ROWS``), least recently used out first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from anomalies.detection.engine import DetectionResult
from anomalies.detection.table import LineTable
from anomalies.selectors import DetectionInput, PropertyDataVersion, feedback_for_property, property_lines_get
from anomalies.services.feedback import FeedbackIndex, split_new_normal
from anomalies.services.options import EngineOptions
from anomalies.services.results import engine_result

# About 40 properties of 36 months (2,500 lines each), some 80 MB at most per worker process: a
# batch job sends a property's chunks one after the other, so a worker needs one or two at a time.
CONTEXT_CACHE_MAX_ROWS = 100_000


@dataclass
class PropertyContext:
    """A property's lines, its verdicts, the table the engine saw and the engine's result."""

    lines: DetectionInput
    feedback: FeedbackIndex
    table: LineTable  # the lines' table, cut at accepted new normals when learning is on
    result: DetectionResult


_lock = threading.Lock()
_contexts: OrderedDict[tuple, PropertyContext] = OrderedDict()
_rows_held = 0


def property_context_get(
    *, property_id: int, version: PropertyDataVersion, options: EngineOptions, learning: bool
) -> tuple[PropertyContext, bool]:
    """The property's context for this data version and these options, and whether it was computed
    now (False: kept from an earlier chunk). Computing it trains or loads the property's models."""
    key = (property_id, version, options.results_key(), learning)
    with _lock:
        context = _contexts.get(key)
        if context is not None:
            _contexts.move_to_end(key)
            return context, False
    lines = property_lines_get(property_id=property_id)
    feedback = FeedbackIndex.build(feedback_for_property(property_id=property_id))
    table = split_new_normal(lines.table, feedback) if learning else lines.table
    context = PropertyContext(lines, feedback, table, engine_result(lines, table, options))
    _keep(key, context)
    return context, True


def _keep(key: tuple, context: PropertyContext) -> None:
    global _rows_held
    with _lock:
        # A property's older versions are of no further use: a key holds one version per property.
        for old in [k for k in _contexts if k[0] == key[0]]:
            _rows_held -= _contexts.pop(old).table.n_rows
        _contexts[key] = context
        _rows_held += context.table.n_rows
        while _rows_held > CONTEXT_CACHE_MAX_ROWS and len(_contexts) > 1:
            _, evicted = _contexts.popitem(last=False)
            _rows_held -= evicted.table.n_rows


def context_cache_clear() -> None:
    """Forget every kept context (tests; a worker never needs to: keys change with the data)."""
    global _rows_held
    with _lock:
        _contexts.clear()
        _rows_held = 0
