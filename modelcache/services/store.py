"""Storing a trained model: the row's fields, and an insert that tolerates a concurrent winner.

*Concurrency.* Training happens outside any transaction. Storing inserts inside a savepoint; a
concurrent worker that inserted the same key first makes ours fail with IntegrityError, and we
read and use the winner's model, so every worker scores with the same model and one row is left.
A row that exists but is inactive is replaced in place with an optimistic
``UPDATE ... WHERE generation = seen`` (the loser of that race reads the winner too).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from anomalies.detection.provider import ModelRequest, json_default
from kernel.values import fitting
from modelcache import envelope
from modelcache.models import AnomalyModelCache
from modelcache.services.rules import DRIFT_COLUMN, data_fingerprint, expiry_reason, n_features, training_sample

STORE_ATTEMPTS = 3


class StorableModel(Protocol):
    """What the cache reads of a fitted model (the engine's ``FittedModel`` has it)."""

    model_type: str
    model_version: str
    threshold: float
    n_train: int
    feature_names: tuple[str, ...]


@dataclass(frozen=True)
class StoreResult:
    entry: AnomalyModelCache
    stored: bool  # False: another worker stored this key first; ``entry`` is the winner's


def _finite_or_none(value: float) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def row_fields(
    *, request: ModelRequest, model: StorableModel, blob: bytes, header: envelope.EnvelopeHeader, x_train: Any, now: datetime
) -> dict[str, Any]:
    """Every column of the entry of ``model`` stored for ``request`` (but its key and generation)."""
    x = np.asarray(x_train, dtype=np.float64) if x_train is not None else np.empty((0, 0))
    metadata = {
        "requested_model_type": request.model_type,
        "config": json.loads(json.dumps(request.key_config(), default=json_default)),
        "library_versions": header.library_versions,
        "envelope": header.to_dict(),
        "model_class": header.model_class,
        "threshold": _finite_or_none(model.threshold),
        "feature_names": list(model.feature_names),
        "n_features": n_features(x) if x.size else None,
        "drift_column": DRIFT_COLUMN,
        "training_sample": training_sample(x),
        "training_fingerprint": data_fingerprint(x),
    }
    return {
        "property_id": request.series.property_id,
        "account_code": fitting(AnomalyModelCache, "account_code", request.series.account_code),
        "document_type": fitting(AnomalyModelCache, "document_type", request.series.document_type),
        # The key holds the requested type ("auto" lets the engine select); the row shows the fitted one.
        "model_type": fitting(AnomalyModelCache, "model_type", model.model_type),
        "model_binary": blob,
        "model_metadata": metadata,
        "model_version": fitting(AnomalyModelCache, "model_version", model.model_version),
        # The engine's models carry no accuracy figures: a replaced row must not keep the old ones.
        "training_accuracy": None,
        "validation_accuracy": None,
        "precision": None,
        "recall": None,
        "f1": None,
        "training_data_size": int(model.n_train),
        "size_bytes": len(blob),
        "trained_at": now,
        "last_used_at": None,
        "use_count": 0,
        "is_active": True,
        "invalidated_reason": "",
        "expires_at": now + timedelta(days=settings.MODEL_CACHE_TTL_DAYS),
    }


def store_model(*, request: ModelRequest, model: StorableModel, x_train: Any) -> StoreResult:
    """Insert the entry of ``request`` (or replace its inactive or expired row in place); when
    another worker stored this key first, its row is returned with ``stored=False``."""
    now = timezone.now()
    model_key = request.model_key
    blob = envelope.seal(model, key=settings.MODEL_CACHE_SIGNING_KEY, created_at=now)
    header = envelope.read_header(blob, key=settings.MODEL_CACHE_SIGNING_KEY)
    fields = row_fields(request=request, model=model, blob=blob, header=header, x_train=x_train, now=now)
    for _attempt in range(STORE_ATTEMPTS):
        try:
            with transaction.atomic():
                row = AnomalyModelCache.objects.create(model_key=model_key, generation=1, **fields)
            return StoreResult(row, True)
        except IntegrityError:
            pass  # the key exists (another worker, or an invalidated row): look at it
        existing = AnomalyModelCache.objects.filter(model_key=model_key).first()
        if existing is None:
            continue  # deleted meanwhile (cleanup): insert again
        if existing.is_active and expiry_reason(existing.expires_at, now) is None:
            return StoreResult(existing, False)
        # An inactive or expired row: replace it in place unless someone else does it first.
        updated = AnomalyModelCache.objects.filter(pk=existing.pk, generation=existing.generation).update(
            generation=existing.generation + 1, **fields
        )
        if updated:
            return StoreResult(AnomalyModelCache.objects.get(pk=existing.pk), True)
    raise DatabaseError(f"model cache: could not store {model_key[:12]} after {STORE_ATTEMPTS} attempts")
