"""One contract for every detector, statistical or PyOD (modelled on PyOD's BaseDetector).

``fit(X) -> self``; ``decision_function(X)``: higher = more abnormal; ``threshold_`` derived once
after fit from the training scores; ``calibrated_z(X)``: the raw score expressed as a robust z
against the training-score distribution, which is what makes scores of different detectors and
different series comparable.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .catalogue import algorithm
from .table import FloatArray

MODEL_VERSION = "reims-detect-1.0"
DEFAULT_CONTAMINATION = 0.05  # a monthly ledger line is wrong a few times in 36 months at most
MAD_TO_SIGMA = 1.4826


class Detector:
    """Base class: subclasses implement ``_fit`` and ``_raw_scores``."""

    name: str = "detector"
    contamination: float = DEFAULT_CONTAMINATION

    def __init__(self) -> None:
        self.threshold_: float = float("inf")
        self.train_median_: float = 0.0
        self.train_scale_: float = 1.0
        self.n_train_: int = 0

    def fit(self, x: FloatArray) -> Detector:
        x = _clean(x)
        self._fit(x)
        scores = self._raw_scores(x)
        self.n_train_ = len(x)
        self.train_median_ = float(np.median(scores)) if len(scores) else 0.0
        mad = float(np.median(np.abs(scores - self.train_median_))) if len(scores) else 0.0
        spread = float(np.std(scores)) if len(scores) else 0.0
        # A detector whose training scores are all equal still needs a finite scale.
        self.train_scale_ = max(MAD_TO_SIGMA * mad, 0.1 * spread, 1e-6 * max(1.0, abs(self.train_median_)))
        self.threshold_ = float(np.quantile(scores, 1.0 - self.contamination)) if len(scores) else float("inf")
        return self

    def decision_function(self, x: FloatArray) -> FloatArray:
        return self._raw_scores(_clean(x))

    def calibrated_z(self, x: FloatArray) -> FloatArray:
        """Robust z of the scores against the training scores (0 = typical training row)."""
        return (self.decision_function(x) - self.train_median_) / self.train_scale_

    def _fit(self, x: FloatArray) -> None:
        raise NotImplementedError

    def _raw_scores(self, x: FloatArray) -> FloatArray:
        raise NotImplementedError


def _clean(x: FloatArray) -> FloatArray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    return np.nan_to_num(x, nan=0.0, posinf=1e6, neginf=-1e6)


class RobustZDetector(Detector):
    """Largest absolute robust z over the columns, against the training medians/MADs."""

    name = "robust_z"

    def _fit(self, x: FloatArray) -> None:
        self.median_ = np.median(x, axis=0)
        mad = MAD_TO_SIGMA * np.median(np.abs(x - self.median_), axis=0)
        self.scale_ = np.maximum(mad, 1e-6 + 0.01 * np.abs(self.median_))

    def _raw_scores(self, x: FloatArray) -> FloatArray:
        return np.max(np.abs((x - self.median_) / self.scale_), axis=1)


class PyODDetector(Detector):
    """A PyOD model built from its catalogue entry (class path and default parameters).

    Columns are robust-scaled on the training rows first: distance and density methods would
    otherwise be dominated by the feature with the largest units.
    """

    def __init__(self, name: str, *, seed: int = 0, contamination: float = DEFAULT_CONTAMINATION) -> None:
        super().__init__()
        info = algorithm(name)
        if info is None or info.family == "statistical":
            raise ValueError(f"unknown PyOD detector {name!r}")
        if not info.available:
            raise ValueError(f"{name} is not available here: {info.unavailable_reason}")
        self.name = name
        self.contamination = contamination
        module_path, _, class_name = info.class_path.rpartition(".")
        cls = getattr(importlib.import_module(module_path), class_name)
        params: dict[str, Any] = dict(info.default_params)
        params["contamination"] = contamination
        signature = inspect.signature(cls.__init__).parameters
        if "random_state" in signature:
            params["random_state"] = seed
        if "n_jobs" in signature:
            params["n_jobs"] = 1
        self._params = {k: v for k, v in params.items() if k in signature}
        self._cls = cls

    def _fit(self, x: FloatArray) -> None:
        self.center_ = np.median(x, axis=0)
        q75, q25 = np.percentile(x, [75, 25], axis=0)
        self.scale_ = np.maximum(q75 - q25, 1e-6 + 0.01 * np.abs(self.center_))
        xs = (x - self.center_) / self.scale_
        params = dict(self._params)
        # Neighbour counts must stay below the number of training rows.
        for key in ("n_neighbors", "n_clusters"):
            if key in params and isinstance(params[key], int):
                params[key] = max(1, min(params[key], len(x) - 1))
        if self._cls.__name__ in ("KNN", "LOF", "COF", "SOD", "ABOD") and "n_neighbors" not in params:
            params["n_neighbors"] = max(1, min(5, len(x) - 1))
        self.model_ = self._cls(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model_.fit(xs)

    def _raw_scores(self, x: FloatArray) -> FloatArray:
        xs = (x - self.center_) / self.scale_
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = np.asarray(self.model_.decision_function(xs), dtype=np.float64)
        return np.nan_to_num(scores, nan=0.0, posinf=1e6, neginf=-1e6)


def make_detector(model_type: str, *, seed: int = 0) -> Detector:
    if model_type == "robust_z":
        return RobustZDetector()
    return PyODDetector(model_type, seed=seed)


@dataclass
class FittedModel:
    """A trained detector with what is needed to score and calibrate later (picklable)."""

    model_type: str
    model_version: str
    feature_names: tuple[str, ...]
    detector: Detector
    threshold: float
    train_median: float
    train_scale: float
    n_train: int
    seed: int
    library_versions: dict[str, str] = field(default_factory=dict)

    def decision_function(self, x: FloatArray) -> FloatArray:
        return self.detector.decision_function(x)

    def calibrated_z(self, x: FloatArray) -> FloatArray:
        return (self.decision_function(x) - self.train_median) / self.train_scale


def library_versions() -> dict[str, str]:
    import pyod
    import scipy
    import sklearn

    return {"pyod": pyod.__version__, "numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}


def train_model(model_type: str, x: FloatArray, *, seed: int = 0, feature_names: tuple[str, ...] = ()) -> FittedModel:
    """Fit ``model_type`` (a catalogue name such as 'ECOD', or 'robust_z') on ``x``."""
    detector = make_detector(model_type, seed=seed).fit(x)
    return FittedModel(
        model_type=model_type,
        model_version=f"{MODEL_VERSION}:{model_type}",
        feature_names=tuple(feature_names),
        detector=detector,
        threshold=detector.threshold_,
        train_median=detector.train_median_,
        train_scale=detector.train_scale_,
        n_train=detector.n_train_,
        seed=seed,
        library_versions=library_versions(),
    )
