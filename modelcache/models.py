"""The database tier of the trained-model cache."""

from __future__ import annotations

from django.db import models

from documents.models import Property
from documents.scoping import PropertyScopedQuerySet


class AnomalyModelCache(models.Model):
    model_key = models.CharField(max_length=64, unique=True, help_text="sha256 of the sorted key JSON")
    property = models.ForeignKey(Property, null=True, blank=True, on_delete=models.CASCADE, related_name="cached_models")
    account_code = models.CharField(max_length=40)
    document_type = models.CharField(max_length=30, blank=True, help_text="document type of the series, when known")
    model_type = models.CharField(max_length=60)
    model_binary = models.BinaryField(help_text="signed envelope around a joblib payload")
    model_metadata = models.JSONField(default=dict, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    training_accuracy = models.FloatField(null=True, blank=True)
    validation_accuracy = models.FloatField(null=True, blank=True)
    precision = models.FloatField(null=True, blank=True)
    recall = models.FloatField(null=True, blank=True)
    f1 = models.FloatField(null=True, blank=True)
    training_data_size = models.PositiveIntegerField(default=0)
    training_date_range = models.JSONField(default=dict, blank=True)
    size_bytes = models.PositiveIntegerField(default=0)
    trained_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    use_count = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    invalidated_reason = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every state change (invalidation, retraining in place): an in-process LRU copy
    # whose generation differs from the row's is stale.
    generation = models.PositiveIntegerField(default=1)

    # Entries without a property (portfolio-wide models) are for superusers only.
    objects = PropertyScopedQuerySet.for_path("property").as_manager()

    class Meta:
        db_table = "anomaly_model_cache"
        ordering = ["-trained_at"]
        verbose_name = "cached model"
        indexes = [
            models.Index(fields=["property", "account_code"], name="model_cache_series_idx"),
            models.Index(fields=["is_active", "expires_at"], name="model_cache_active_exp_idx"),
            models.Index(fields=["model_type"], name="model_cache_type_idx"),
            models.Index(fields=["last_used_at"], name="model_cache_last_used_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.model_type} {self.account_code} ({self.model_key[:12]})"


class StatsCounter(models.TextChoices):
    LRU_HIT = "lru_hit", "LRU hit"
    LRU_MISS = "lru_miss", "LRU miss"
    DB_HIT = "db_hit", "Database hit"
    DB_MISS = "db_miss", "Database miss"
    TRAINED = "trained", "Trained and stored"
    STALE = "stale", "Found but invalidated by a rule"
    REFUSED = "refused", "Refused blob (signature or format)"


class ModelCacheStats(models.Model):
    """Daily totals of the cache counters of every process, added to on each usage flush."""

    day = models.DateField()
    counter = models.CharField(max_length=20, choices=StatsCounter.choices)
    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "model_cache_stats"
        ordering = ["-day", "counter"]
        verbose_name = "model cache statistic"
        constraints = [models.UniqueConstraint(fields=["day", "counter"], name="model_cache_stats_day_counter_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.counter}={self.value}"
