"""Glue of the analyst console: what the anomaly review page and the property heatmap show.

Reads come from ``anomalies.selectors``; the charts are drawn by ``anomalies.charts`` (server-side
SVG, no network at run time). Verdicts are written by ``anomalies.services.anomaly_feedback_submit``
through the admin view in ``anomalies.admin``.

The review queue is the anomaly changelist as the analyst filtered and sorted it: the change page
keeps the changelist's query string (``_changelist_filters``, as the admin itself does) and the
previous / next anomalies are read from the same ``ChangeList`` the list page builds, so ``j`` / ``k``
walk exactly the rows the analyst was looking at.
"""

from __future__ import annotations

import copy
import math
import statistics
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.admin.options import IncorrectLookupParameters
from django.http import HttpRequest, QueryDict
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from anomalies import charts, selectors
from anomalies.detection.scoring import FLAG_SCORE, z_from_score
from anomalies.models import AnomalyDetection, AnomalyExplanation, AnomalyFeedback, AnomalyType, FeedbackType
from anomalies.selectors.benchmarks import benchmark_position
from anomalies.services.feedback import FEEDBACK_NOTES_MAX_LENGTH
from documents.models import DocumentType
from kernel.flags import FeatureFlags

# Ids of the queue read to find a row's neighbours: a review queue is a few thousand rows at most;
# beyond this the page still works but shows no position and no neighbours past the limit.
QUEUE_LIMIT = 20_000

# The verdict buttons of the review page, in order, with their keyboard shortcut.
VERDICTS = (
    (FeedbackType.CONFIRMED, "Confirm", "c", "It is a real error or event to act on."),
    (FeedbackType.DISMISSED, "Dismiss", "d", "Not worth acting on; stays quiet while the amount is unchanged."),
    (FeedbackType.FALSE_POSITIVE, "False positive", "f", "The amount is right; the model was wrong."),
    (FeedbackType.NEW_NORMAL, "Accept as new normal", "a", "A lasting change: later months compare with this level."),
)
# For a line the model did not flag, the analyst can report a miss instead.
MISSED = (FeedbackType.FALSE_NEGATIVE, "Flag as missed anomaly", "m", "The model should have flagged this line.")

DOCUMENT_TYPE_SHORT = {
    DocumentType.BALANCE_SHEET: "BS",
    DocumentType.INCOME_STATEMENT: "IS",
    DocumentType.CASH_FLOW: "CF",
    DocumentType.RENT_ROLL: "RR",
    DocumentType.MORTGAGE_STATEMENT: "MS",
}


# --- The review queue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuePosition:
    """Where an anomaly sits in the filtered changelist: 1-based position, total and neighbours."""

    position: int | None
    total: int
    previous_id: int | None
    next_id: int | None


def review_queue_position(
    *, model_admin: Any, request: HttpRequest, anomaly_id: int, changelist_filters: str
) -> QueuePosition:
    """The anomaly's place in the changelist filtered by ``changelist_filters`` (a query string).

    Invalid filters (a stale bookmark) give the default queue, as the changelist itself would
    refuse them. When the anomaly is not in the queue (it left it, e.g. after a verdict), the
    neighbours are empty.
    """
    ids = _queue_ids(model_admin=model_admin, request=request, changelist_filters=changelist_filters)
    try:
        index = ids.index(anomaly_id)
    except ValueError:
        return QueuePosition(None, len(ids), None, ids[0] if ids else None)
    return QueuePosition(
        position=index + 1,
        total=len(ids),
        previous_id=ids[index - 1] if index > 0 else None,
        next_id=ids[index + 1] if index + 1 < len(ids) else None,
    )


def _queue_ids(*, model_admin: Any, request: HttpRequest, changelist_filters: str) -> list[int]:
    listing = copy.copy(request)
    listing.method = "GET"
    listing.GET = QueryDict(changelist_filters or "")
    try:
        changelist = model_admin.get_changelist_instance(listing)
    except IncorrectLookupParameters:
        listing.GET = QueryDict("")
        changelist = model_admin.get_changelist_instance(listing)
    return list(changelist.queryset.values_list("pk", flat=True)[:QUEUE_LIMIT])


def change_url(anomaly_id: int, changelist_filters: str = "") -> str:
    """The review page of an anomaly, keeping the queue (the changelist's query string)."""
    url = reverse("admin:anomalies_anomalydetection_change", args=[anomaly_id])
    return f"{url}?{urlencode({'_changelist_filters': changelist_filters})}" if changelist_filters else url


def changelist_url(changelist_filters: str = "") -> str:
    url = reverse("admin:anomalies_anomalydetection_changelist")
    return f"{url}?{changelist_filters}" if changelist_filters else url


def account_label(detection: AnomalyDetection) -> str:
    """'4010-0000 Base rent': the code and the account's name (``account_name`` is annotated by
    ``selectors.account_name_expression``, as the admin's queryset and the selectors do)."""
    return f"{detection.account_code} {detection.account_name}".strip()


# --- The series chart ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesChart:
    svg: SafeString
    band_note: str
    points: list[selectors.SeriesPoint]


def expected_band(points: list[selectors.SeriesPoint], *, threshold: float | None) -> tuple[list, list, float | None]:
    """(low, high, half_width_in_scales): expected value ± the deviation that reaches the threshold.

    A stored detection keeps its expected value and its z (the deviation in robust scales of the
    series). The scale is recovered as |amount - expected| / |z| on the months the model found
    ordinary (|z| between 0.3 and the flag level: tiny z make the ratio unstable, flagged months
    are what the scale must not be learnt from), and its median is the series' scale. The band is
    expected ± z_flag scales, where z_flag is the z whose score is the flag threshold: an amount
    outside the band would have been flagged. Without such months there is no band.
    """
    z_flag = z_from_score(threshold if threshold is not None else FLAG_SCORE)
    scales = [
        abs(p.amount - p.expected) / abs(p.z_score)
        for p in points
        if p.amount is not None
        and p.expected is not None
        and p.z_score is not None
        and math.isfinite(p.z_score)
        and 0.3 <= abs(p.z_score) < z_flag
        and not p.is_anomaly
    ]
    if not scales:
        return [None] * len(points), [None] * len(points), None
    half_width = z_flag * statistics.median(scales)
    low = [None if p.expected is None else p.expected - half_width for p in points]
    high = [None if p.expected is None else p.expected + half_width for p in points]
    return low, high, z_flag


def series_chart(*, detection: AnomalyDetection, account: str = "") -> SeriesChart:
    """The anomaly's series: amounts, expected values and band, flagged months marked; ``account``
    titles it (default: the account code)."""
    points = selectors.anomaly_series(detection=detection)
    low, high, z_flag = expected_band(points, threshold=detection.threshold)
    marked = [i for i, p in enumerate(points) if p.is_anomaly or p.detection_id == detection.id]
    current = next((i for i, p in enumerate(points) if p.detection_id == detection.id), None)
    svg = charts.series_chart_svg(
        labels=[p.label for p in points],
        values=[p.amount for p in points],
        expected=[p.expected for p in points],
        band_low=low,
        band_high=high,
        marked=marked,
        marked_colours=[charts.SEVERITY_COLOURS.get(points[i].severity, "#dc2626") for i in marked],
        current=current,
        width=760,
        height=300,
        title=f"{account or detection.account_code} · {detection.get_document_type_display()} · {detection.property.code}",
    )
    if z_flag is None:
        note = "No expected band: too few ordinary months with a stored deviation to measure the series' spread."
    else:
        threshold = detection.threshold if detection.threshold is not None else FLAG_SCORE
        note = (
            f"Shaded band: expected value ± {z_flag:.1f} robust scales of this series (the scale recovered "
            f"from the stored z-scores of its ordinary months); an amount outside it scores at or above the "
            f"flag threshold {threshold:.0f}."
        )
    return SeriesChart(mark_safe(svg), note, points)  # noqa: S308 - charts escape every data label


# --- The review page ---------------------------------------------------------------------------------


# The engine's features (anomalies.detection.features.FEATURE_NAMES) in an accountant's words, and
# how each stored value reads.
FEATURE_WORDS: dict[str, tuple[str, str]] = {
    "level": ("Amount", "money"),
    "log_magnitude": ("Size of the amount", "none"),
    "change": ("Change from the month before", "money"),
    "pct_change": ("Change from the month before", "percent"),
    "yoy_ratio": ("Against the same month last year", "times"),
    "trailing_robust_z": ("Distance from the last 12 months", "spread"),
    "seasonal_residual_z": ("Distance from this month in other years", "spread"),
    "local_residual_z": ("Distance from the six surrounding months", "spread"),
    "decimal_shift": ("Looks like a misplaced decimal point", "closeness"),
    "sign_mismatch": ("Sign opposite to this account's usual sign", "yes"),
    "revenue_share": ("Share of the month's revenue", "percent"),
    "peer_z": ("Distance from the same account at other properties", "spread"),
    "statement_arithmetic": ("The statement's own arithmetic", "none"),
}


def _feature_value(kind: str, value: Any) -> str:
    if not isinstance(value, int | float) or kind == "none":
        return ""
    value = float(value)
    if kind == "money":
        return _readable(value)
    if kind == "percent":
        return f"{value * 100:+.0f} %" if abs(value) < 1e4 else ""
    if kind == "times":
        return f"{value:.1f}× last year's amount" if value > 0 else "last year's amount had the other sign"
    if kind == "spread":
        return f"{abs(value):.1f}× its usual spread {'above' if value >= 0 else 'below'}"
    if kind == "closeness":
        return "yes" if value >= 0.5 else "no"
    return "yes" if value else "no"


def factor_rows(factors: Any) -> list[dict[str, Any]]:
    """Contributing factors as rows (name, share 0-1 or None, detail) whatever their stored shape,
    named and rounded as an accountant reads them (FEATURE_WORDS).

    The engine stores a list of {feature, value, contribution} for model findings and a
    {statement: {...}} mapping for arithmetic checks; both read as rows here.
    """
    if isinstance(factors, dict):
        factors = factors.get("features") or [
            {"feature": k, **v} if isinstance(v, dict) else {"feature": k, "value": v}
            for k, v in factors.items()
            if k not in {"feedback", "detector_threshold"}
        ]
    rows = []
    for item in factors or []:
        if not isinstance(item, dict):
            rows.append({"name": str(item), "share": None, "detail": ""})
            continue
        share = item.get("contribution")
        feature = str(item.get("feature", "factor"))
        name, kind = FEATURE_WORDS.get(feature, (feature.replace("_", " ").capitalize(), ""))
        extra = {k: v for k, v in item.items() if k not in {"feature", "contribution", "value"}}
        detail = _feature_value(kind, item.get("value")) if kind else _readable(item.get("value", ""))
        details = [detail] if detail else []
        details += [f"{k.replace('_', ' ')} {_readable(v)}" for k, v in extra.items()]
        rows.append(
            {
                "name": name,
                "share": float(share) if isinstance(share, int | float) else None,
                "percent": round(100 * float(share)) if isinstance(share, int | float) else None,
                "detail": ", ".join(details),
            }
        )
    return rows


def _readable(value: Any) -> str:
    """Numbers rounded as on a statement: whole units from 100 up, two decimals below."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, float | int):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _root_cause_label(value: str) -> str:
    return str(dict(AnomalyType.choices).get(value, value.replace("_", " ")))


def review_context(
    *, detection: AnomalyDetection, request: HttpRequest, model_admin: Any, changelist_filters: str
) -> dict[str, Any]:
    """Everything the review panel above the anomaly's fields shows."""
    explanation = detection.explanations.order_by("-created_at").first()
    queue = review_queue_position(
        model_admin=model_admin, request=request, anomaly_id=detection.id, changelist_filters=changelist_filters
    )
    can_review = request.user.has_perm("anomalies.add_anomalyfeedback")
    own_feedback = (
        AnomalyFeedback.objects.filter(
            property_id=detection.property_id,
            document_type=detection.document_type,
            period_id=detection.period_id,
            account_code=detection.account_code,
            user_id=request.user.pk,
        ).first()
        if can_review
        else None
    )
    verdicts = list(VERDICTS) if detection.is_anomaly or detection.status != "open" else [MISSED]
    feedback_log = (detection.contributions or {}).get("feedback") if isinstance(detection.contributions, dict) else None
    return {
        "detection": detection,
        "account_label": account_label(detection),
        "heading": f"{account_label(detection)} · {detection.get_document_type_display()} · {detection.period.label} "
        f"· {detection.property.code}",
        "chart": series_chart(detection=detection, account=account_label(detection)),
        "shap": shap_chart(explanation=explanation),
        "explanation": explanation,
        "root_cause": _root_cause_label(explanation.root_cause_type if explanation else detection.anomaly_type),
        "sentence": (explanation.summary if explanation else "") or detection.explanation_text,
        "factors": factor_rows(explanation.contributing_factors if explanation else (detection.contributions or {})),
        "suggested_actions": list(explanation.suggested_actions) if explanation else [],
        "source_boxes": selectors.detection_source_boxes(detection=detection),
        "benchmarks_enabled": FeatureFlags.is_enabled("PORTFOLIO_BENCHMARKS_ENABLED"),
        "benchmark": benchmark_position(detection=detection)
        if FeatureFlags.is_enabled("PORTFOLIO_BENCHMARKS_ENABLED")
        else None,
        "document_url": reverse("admin:documents_documentupload_change", args=[detection.document_id]),
        "property_url": reverse("admin:documents_property_change", args=[detection.property_id]),
        "queue": queue,
        "previous_url": change_url(queue.previous_id, changelist_filters) if queue.previous_id else "",
        "next_url": change_url(queue.next_id, changelist_filters) if queue.next_id else "",
        "queue_url": changelist_url(changelist_filters),
        "changelist_filters": changelist_filters,
        "can_review": can_review,
        "verdicts": [{"value": v, "label": label, "key": key, "help": help_} for v, label, key, help_ in verdicts],
        "own_feedback": own_feedback,
        "feedback_log": feedback_log,
        "feedback_url": reverse("admin:anomalies_anomalydetection_feedback", args=[detection.id]),
        "notes_max_length": FEEDBACK_NOTES_MAX_LENGTH,
    }


def shap_chart(*, explanation: AnomalyExplanation | None) -> dict[str, Any] | None:
    """The stored SHAP values of the line's score as a small bar chart (None when none were stored)."""
    shap = explanation.shap_values if explanation is not None else None
    if not isinstance(shap, dict) or not isinstance(shap.get("attributions"), list):
        return None
    bars = [(str(a.get("evidence", "")), float(a.get("shap", 0.0))) for a in shap["attributions"] if isinstance(a, dict)]
    svg = charts.shap_bars_svg(attributions=bars, base_value=float(shap.get("base_value", 0.0)))
    return {
        "svg": mark_safe(svg),  # noqa: S308 - charts escape every data label
        "method": str(shap.get("method", "")),
        "surrogate_score": shap.get("surrogate_score"),
        "background_rows": shap.get("background_rows"),
    }


# --- The property heatmap ----------------------------------------------------------------------------

HEATMAP_LABEL_WIDTH = 330  # px: "IS 4010-0000 " and a name of HEATMAP_NAME_CHARS at font size 10
HEATMAP_NAME_CHARS = 40


def heatmap_row_label(row: tuple[str, str], account_name: str) -> str:
    """'IS 4010-0000 Base rent': the statement's short form, the code and the account's name."""
    document_type, account_code = row
    name = account_name if len(account_name) <= HEATMAP_NAME_CHARS else account_name[: HEATMAP_NAME_CHARS - 1] + "…"
    return " ".join(part for part in (DOCUMENT_TYPE_SHORT.get(document_type, document_type), account_code, name) if part)


def property_heatmap_svg(*, property_id: int) -> SafeString:
    """The property's flagged detections by series and month; a cell opens its anomaly.

    Each link keeps a review queue of the property's flagged anomalies, so ``j`` / ``k`` on the
    anomaly page walk the rest of the property.
    """
    heatmap = selectors.property_anomaly_heatmap(property_id=property_id)
    if heatmap.is_empty:
        return mark_safe("")
    queue = urlencode({"property__id__exact": property_id})
    svg = charts.heatmap_svg(
        rows=[heatmap_row_label(key, heatmap.account_names.get(key, "")) for key in heatmap.rows],
        columns=heatmap.periods,
        cells={key: cell.score for key, cell in heatmap.cells.items()},
        links={key: change_url(cell.detection_id, queue) for key, cell in heatmap.cells.items()},
        details={key: f"{cell.severity}, {cell.status.replace('_', ' ')}" for key, cell in heatmap.cells.items()},
        cell=16,
        row_label_width=HEATMAP_LABEL_WIDTH,
    )
    return mark_safe(svg)  # noqa: S308 - charts escape every data label
