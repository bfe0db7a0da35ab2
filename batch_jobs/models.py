"""Batch reprocessing jobs: the job row is the source of truth for progress and outcome."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from documents.scoping import ParentScopedQuerySet, PropertyListScopedQuerySet


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
    processor = models.CharField(
        max_length=100, default="detect_anomalies", help_text="what each chunk does (batch_jobs.processors)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    estimated_completion_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = PropertyListScopedQuerySet.as_manager()

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

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.completed_at or timezone.now()
        return round((end - self.started_at).total_seconds(), 1)


FINISHED_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class ChunkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    LEASED = "leased", "Leased"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class BatchJobChunk(models.Model):
    """A slice of one job's documents: the unit a worker leases, processes and records.

    The chunk rows, not the broker, say what is left to do: a chunk is done once, its counts are
    written with its status in one transaction, and the job's counts are sums over its chunks.
    """

    job = models.ForeignKey(BatchReprocessingJob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    document_ids = models.JSONField(default=list, help_text="ordered by property, document type, period")
    status = models.CharField(max_length=10, choices=ChunkStatus.choices, default=ChunkStatus.PENDING)
    task_id = models.CharField(max_length=255, blank=True, help_text="the only Celery task allowed to run it")
    attempts = models.PositiveSmallIntegerField(default=0)
    leased_by = models.CharField(max_length=255, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    processed_count = models.PositiveIntegerField(default=0)
    successful_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    anomaly_count = models.PositiveIntegerField(default=0)
    results = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ParentScopedQuerySet.for_parent("job").as_manager()

    class Meta:
        db_table = "batch_job_chunks"
        ordering = ["job_id", "index"]
        verbose_name = "batch job chunk"
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="batch_chunk_job_index_unique"),
        ]
        indexes = [
            models.Index(fields=["job", "status"], name="batch_chunk_job_status_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="batch_chunk_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"job #{self.job_id} chunk {self.index} ({self.status})"
