"""Batch reprocessing jobs: the job row is the source of truth for progress and outcome."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class ExtractionStatusFilter(models.TextChoices):
    ALL = "all", "All"
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class BatchReprocessingJob(models.Model):
    job_name = models.CharField(max_length=200)
    initiated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    property_ids = models.JSONField(default=list, blank=True, help_text="empty means every property")
    date_range_start = models.DateField(null=True, blank=True)
    date_range_end = models.DateField(null=True, blank=True)
    document_types = models.JSONField(default=list, blank=True, help_text="empty means every type")
    extraction_status_filter = models.CharField(
        max_length=20, choices=ExtractionStatusFilter.choices, default=ExtractionStatusFilter.ALL
    )
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    celery_task_id = models.CharField(max_length=255, blank=True)
    total_documents = models.PositiveIntegerField(default=0)
    processed_documents = models.PositiveIntegerField(default=0)
    successful_documents = models.PositiveIntegerField(default=0)
    failed_documents = models.PositiveIntegerField(default=0)
    skipped_documents = models.PositiveIntegerField(default=0)
    results_summary = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    estimated_completion_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "batch_reprocessing_jobs"
        ordering = ["-created_at"]
        verbose_name = "batch reprocessing job"
        indexes = [
            models.Index(fields=["status", "created_at"], name="batch_job_status_created_idx"),
            models.Index(fields=["created_at"], name="batch_job_created_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.job_name} ({self.status})"

    @property
    def progress_pct(self) -> float:
        if not self.total_documents:
            return 100.0 if self.status == JobStatus.COMPLETED else 0.0
        return round(100.0 * self.processed_documents / self.total_documents, 1)
