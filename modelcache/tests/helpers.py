"""Test support: a picklable fitted model, training data, and a pickle that attacks its loader."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import factory
import numpy as np
from pyod.models.hbos import HBOS

from documents.models import Property


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
