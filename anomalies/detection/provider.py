"""The contract between the detection engine and whoever provides its fitted models (Django-free).

The engine asks for one model per modelled series through a :class:`ModelProvider`; the model
cache (``modelcache.services.CachedModelProvider``) implements it with two tiers and a table,
:class:`TrainingProvider` without any cache.  The engine names the model it needs with a
:class:`ModelRequest`; ``ModelRequest.model_key`` is the one key formula: the cache stores its
entry under it and the engine writes it on every detection the model scored, so a detection
joins the cache entry that scored it.

The key holds the model version and the feature version: changing the detectors or the features
changes every key, so an old model is never served to new features (it ages out of the table).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .detectors import MODEL_VERSION, FittedModel
from .features import FEATURE_NAMES, FEATURE_VERSION
from .table import FloatArray

# What the key records of the features: their version and their names (a renamed, added or
# dropped feature changes the key even if FEATURE_VERSION was not bumped).
CURRENT_FEATURE_VERSION = f"{FEATURE_VERSION}:{','.join(FEATURE_NAMES)}"


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def generate_model_key(property_id: int | None, account_code: str, model_type: str, config: Mapping[str, Any]) -> str:
    """sha256 hex of the sorted JSON of the four parts (seed Task 1.4)."""
    payload = {"property_id": property_id, "account_code": account_code, "model_type": model_type, "config": config}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=json_default).encode()).hexdigest()


@dataclass(frozen=True)
class SeriesModelKey:
    """The series a model is fitted on: (property, document type, account code)."""

    property_id: int
    document_type: str
    account_code: str


@dataclass(frozen=True)
class ModelRequest:
    """One model the engine needs: its series, the requested type ('auto': the engine selects),
    the training configuration, and the model and feature versions it must have been fitted with."""

    series: SeriesModelKey
    model_type: str
    config: Mapping[str, Any] = field(default_factory=dict)
    model_version: str = MODEL_VERSION
    feature_version: str = CURRENT_FEATURE_VERSION

    def key_config(self) -> dict[str, Any]:
        """The config part of the key: the training config plus what else tells two models apart
        (the same account code can appear on two document types)."""
        return {
            **self.config,
            "document_type": self.series.document_type,
            "model_version": self.model_version,
            "feature_version": self.feature_version,
        }

    @property
    def model_key(self) -> str:
        return generate_model_key(self.series.property_id, self.series.account_code, self.model_type, self.key_config())


class ModelProvider(Protocol):
    """What the engine calls on its model provider."""

    def get_or_train(self, request: ModelRequest, x_train: FloatArray, train: Callable[[], FittedModel]) -> FittedModel:
        """The model of ``request``: a cached one, or ``train()``'s (which the provider may keep)."""
        ...

    def prefetch(self, requests: Sequence[ModelRequest]) -> int:
        """Load the models of a call's requests in bulk before ``get_or_train``; returns how many
        were found."""
        ...

    def flush(self) -> int:
        """Write what the provider accumulated (usage counts) at the end of a pass; returns rows written."""
        ...


class TrainingProvider:
    """The provider without a cache: always trains, keeps nothing."""

    def get_or_train(self, request: ModelRequest, x_train: FloatArray, train: Callable[[], FittedModel]) -> FittedModel:
        del request, x_train
        return train()

    def prefetch(self, requests: Sequence[ModelRequest]) -> int:
        del requests
        return 0

    def flush(self) -> int:
        return 0
