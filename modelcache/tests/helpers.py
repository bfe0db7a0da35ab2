"""Test support: a picklable fitted model, training data, and a pickle that attacks its loader."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import factory
import numpy as np
from pyod.models.hbos import HBOS

from anomalies.detection.provider import ModelRequest, SeriesModelKey
from documents.models import Property
from modelcache.services import CacheOutcome, ModelCache, get_or_train_model

CONFIG = {"min_history": 4}


@dataclass
class FittedStandIn:
    """The shape of the engine's FittedModel (model_type, version, threshold, training stats)."""

    model_type: str
    model_version: str
    detector: Any
    threshold: float
    n_train: int
    feature_names: tuple[str, ...] = ()
    validation_accuracy: float | None = None
    training_stats: dict = field(default_factory=dict)

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return self.detector.decision_function(x)


def series(seed: int = 0, *, rows: int = 36, cols: int = 6, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(loc=shift, size=(rows, cols))


def train_hbos(x: np.ndarray, *, validation_accuracy: float | None = None) -> FittedStandIn:
    detector = HBOS().fit(x)
    return FittedStandIn(
        model_type="HBOS",
        model_version="test-1:HBOS",
        detector=detector,
        threshold=float(detector.threshold_),
        n_train=len(x),
        feature_names=tuple(f"f{i}" for i in range(x.shape[1])),
        validation_accuracy=validation_accuracy,
    )


class CountingTrainer:
    """A ``train`` callable that counts its calls."""

    def __init__(self, x: np.ndarray, **kwargs: Any) -> None:
        self.x = x
        self.kwargs = kwargs
        self.calls = 0

    def __call__(self) -> FittedStandIn:
        self.calls += 1
        return train_hbos(self.x, **self.kwargs)


class FileWriter:
    """Unpickling this object creates ``path``: proof that a blob was (or was not) loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def malicious_pickle(path: str) -> bytes:
    return pickle.dumps(FileWriter(path))


class PropertyFactory(factory.django.DjangoModelFactory):
    code = factory.Sequence(lambda n: f"MC{n:04d}")
    name = factory.Sequence(lambda n: f"Model cache property {n}")
    property_type = "office"

    class Meta:
        model = Property


def request_for(
    prop: Property, account: str = "4010-0000", *, document_type: str = "income_statement", config: dict | None = None
) -> ModelRequest:
    """What the engine would ask for this series."""
    return ModelRequest(SeriesModelKey(prop.pk, document_type, account), "auto", CONFIG if config is None else config)


def lookup(
    prop: Property,
    x: np.ndarray,
    trainer: Any,
    *,
    account: str = "4010-0000",
    cache: ModelCache | None = None,
    config: dict | None = None,
    document_type: str = "income_statement",
) -> tuple[Any, CacheOutcome]:
    request = request_for(prop, account, document_type=document_type, config=config)
    return get_or_train_model(request=request, x_train=x, train=trainer, cache=cache)
