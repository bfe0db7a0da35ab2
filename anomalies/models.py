"""Detections, their explanations, analyst feedback, peer benchmarks and the selection log."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from documents.models import DocumentType, DocumentUpload, FinancialPeriod, LineItem, Property
from documents.scoping import PropertyScopedQuerySet
from kernel import vocabulary


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Direction(models.TextChoices):
    UP = "up", "Up"
    DOWN = "down", "Down"
    NONE = "none", "None"


# Built from kernel.vocabulary, where the numeric core and the demo generator read the same values.
AnomalyType = models.TextChoices("AnomalyType", vocabulary.choices(vocabulary.ANOMALY_KIND_LABELS))


class DetectionStatus(models.TextChoices):
    OPEN = "open", "Open"
    CONFIRMED = "confirmed", "Confirmed"
    DISMISSED = "dismissed", "Dismissed"
    FALSE_POSITIVE = "false_positive", "False positive"
    RESOLVED = "resolved", "Resolved"
    SUPPRESSED = "suppressed", "Suppressed"
    NEW_NORMAL = "new_normal", "Accepted as new normal"


class AnomalyDetection(models.Model):
    """One scored line item of a document's latest version.

    Every scored line is kept (``is_anomaly`` tells flagged from normal) so that exports with
    ``--all`` and series charts need no recomputation. Reprocessing a document replaces its rows.
    """

    line_item = models.ForeignKey(LineItem, null=True, blank=True, on_delete=models.CASCADE, related_name="detections")
    document = models.ForeignKey(DocumentUpload, on_delete=models.CASCADE, related_name="detections")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="detections")
    document_type = models.CharField(max_length=30, choices=DocumentType.choices)
    period = models.ForeignKey(FinancialPeriod, on_delete=models.PROTECT, related_name="detections")
    account_code = models.CharField(max_length=40)
    field_value = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    expected_value = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    z_score = models.FloatField(null=True, blank=True)
    percentage_change = models.FloatField(null=True, blank=True)
    anomaly_type = models.CharField(max_length=30, choices=AnomalyType.choices, default=AnomalyType.NONE)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.LOW)
    confidence = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)])
    anomaly_score = models.FloatField(default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(100.0)])
    threshold = models.FloatField(null=True, blank=True, help_text="score at or above which a line is flagged")
    is_anomaly = models.BooleanField(default=False)
    direction = models.CharField(max_length=10, choices=Direction.choices, default=Direction.NONE)
    detector = models.CharField(max_length=100)
    model_key = models.CharField(max_length=64, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    contributions = models.JSONField(default=dict, blank=True, help_text="per-feature contributions to the score")
    explanation_text = models.TextField(blank=True)  # sentences grow with verdict reasons: never cut
    status = models.CharField(max_length=20, choices=DetectionStatus.choices, default=DetectionStatus.OPEN)
    detected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PropertyScopedQuerySet.for_path("property").as_manager()

    class Meta:
        db_table = "anomaly_detections"
        ordering = ["-anomaly_score", "-detected_at"]
        verbose_name = "anomaly"
        verbose_name_plural = "anomalies"
        constraints = [
            models.UniqueConstraint(fields=["document", "account_code"], name="detection_document_account_unique"),
            models.CheckConstraint(
                condition=Q(anomaly_score__gte=0) & Q(anomaly_score__lte=100), name="detection_score_0_100"
            ),
        ]
        indexes = [
            models.Index(fields=["is_anomaly", "severity"], name="detection_flag_severity_idx"),
            models.Index(fields=["is_anomaly", "status"], name="detection_flag_status_idx"),
            models.Index(fields=["property", "document_type", "account_code"], name="detection_series_idx"),
            models.Index(fields=["period"], name="detection_period_idx"),
            models.Index(fields=["anomaly_score"], name="detection_score_idx"),
            models.Index(fields=["anomaly_type"], name="detection_type_idx"),
            models.Index(fields=["detected_at"], name="detection_detected_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_code} {self.get_document_type_display()} score {self.anomaly_score:.0f}"


class AnomalyExplanation(models.Model):
    anomaly = models.ForeignKey(AnomalyDetection, on_delete=models.CASCADE, related_name="explanations")
    summary = models.CharField(max_length=500, help_text="one plain sentence")
    root_cause_type = models.CharField(max_length=40, db_index=True)
    contributing_factors = models.JSONField(default=list)
    shap_values = models.JSONField(null=True, blank=True)
    lime_explanation = models.JSONField(null=True, blank=True)
    suggested_actions = models.JSONField(default=list)
    explanation_method = models.CharField(max_length=40)
    computation_time_ms = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PropertyScopedQuerySet.for_path("anomaly__property").as_manager()

    class Meta:
        db_table = "anomaly_explanations"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["explanation_method"], name="explanation_method_idx")]

    def __str__(self) -> str:
        return self.summary


class FeedbackType(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed"
    DISMISSED = "dismissed", "Dismissed"
    FALSE_POSITIVE = "false_positive", "False positive"
    FALSE_NEGATIVE = "false_negative", "False negative"
    NEW_NORMAL = "new_normal", "Accepted as new normal"


class AnomalyFeedback(models.Model):
    """An analyst's verdict on a detection.

    The natural key of the line (property, document type, period, account, amount) is kept
    beside the detection so that feedback survives reprocessing, which replaces detections.
    """

    anomaly = models.ForeignKey(AnomalyDetection, null=True, blank=True, on_delete=models.SET_NULL, related_name="feedback")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="feedback")
    document_type = models.CharField(max_length=30, choices=DocumentType.choices)
    period = models.ForeignKey(FinancialPeriod, on_delete=models.PROTECT, related_name="feedback")
    account_code = models.CharField(max_length=40)
    field_value = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    feedback_type = models.CharField(max_length=20, choices=FeedbackType.choices)
    is_anomaly = models.BooleanField()
    notes = models.TextField(blank=True)
    feedback_confidence = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    business_context = models.JSONField(default=dict, blank=True)
    # What the model said when the verdict was given: later passes generalise the verdict to
    # lines with the same kind of evidence, no stronger (anomalies.detection.verdicts).
    anomaly_type = models.CharField(max_length=30, choices=AnomalyType.choices, blank=True)
    model_score = models.FloatField(null=True, blank=True, help_text="the model's score (0-100) the analyst saw")
    learned_applied = models.BooleanField(default=False, help_text="a pass has applied this verdict")
    similar_anomalies_suppressed = models.PositiveIntegerField(
        default=0, help_text="other lines this verdict quieted or suppressed in the latest pass"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PropertyScopedQuerySet.for_path("property").as_manager()

    class Meta:
        db_table = "anomaly_feedback"
        ordering = ["-updated_at"]
        verbose_name_plural = "anomaly feedback"
        constraints = [
            models.UniqueConstraint(
                fields=["property", "document_type", "period", "account_code", "user"],
                name="feedback_one_per_line_and_user",
            ),
        ]
        indexes = [
            models.Index(fields=["feedback_type"], name="feedback_type_idx"),
            models.Index(fields=["property", "document_type", "account_code"], name="feedback_series_idx"),
            models.Index(fields=["created_at"], name="feedback_created_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_feedback_type_display()} {self.account_code}"


class CrossPropertyBenchmark(models.Model):
    account_code = models.CharField(max_length=40)
    benchmark_period = models.ForeignKey(FinancialPeriod, on_delete=models.CASCADE, related_name="benchmarks")
    property_group = models.CharField(max_length=40, help_text="a property type, or 'all'")
    mean = models.FloatField()
    median = models.FloatField()
    std = models.FloatField()
    p25 = models.FloatField()
    p75 = models.FloatField()
    p90 = models.FloatField()
    p95 = models.FloatField()
    property_count = models.PositiveIntegerField()
    property_ids = models.JSONField(default=list)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "cross_property_benchmarks"
        ordering = ["account_code", "benchmark_period__ordinal"]
        constraints = [
            models.UniqueConstraint(
                fields=["account_code", "benchmark_period", "property_group"], name="benchmark_account_period_group"
            ),
        ]
        indexes = [models.Index(fields=["property_group"], name="benchmark_group_idx")]

    def __str__(self) -> str:
        return f"{self.account_code} {self.property_group} {self.benchmark_period}"


class SelectionSource(models.TextChoices):
    """Where a selection's candidates came from."""

    LLM = "llm", "LLM (asked in this pass)"
    CACHE = "cache", "LLM (cached answer for the same profile)"
    RULES = "rules", "PyOD's routing rules"


class ModelSelectionLog(models.Model):
    property = models.ForeignKey(Property, on_delete=models.CASCADE, related_name="model_selections")
    document_type = models.CharField(max_length=30, choices=DocumentType.choices, blank=True)
    account_code = models.CharField(max_length=40)
    data_characteristics = models.JSONField(default=dict)
    rule_recommended_models = models.JSONField(default=list)
    llm_recommended_models = models.JSONField(null=True, blank=True)
    llm_error = models.CharField(max_length=300, blank=True)
    selected_model = models.CharField(max_length=60, db_index=True)
    selection_source = models.CharField(max_length=10, choices=SelectionSource.choices, default=SelectionSource.RULES)
    selection_reasoning = models.TextField(blank=True)
    cross_validation_score = models.FloatField(null=True, blank=True)
    actual_precision = models.FloatField(null=True, blank=True)
    actual_recall = models.FloatField(null=True, blank=True)
    selected_at = models.DateTimeField(auto_now_add=True)

    objects = PropertyScopedQuerySet.for_path("property").as_manager()

    class Meta:
        db_table = "pyod_model_selection_log"
        ordering = ["-selected_at"]
        verbose_name = "model selection"
        indexes = [
            models.Index(fields=["property", "account_code"], name="selection_series_idx"),
            models.Index(fields=["selected_at"], name="selection_selected_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account_code}: {self.selected_model}"
