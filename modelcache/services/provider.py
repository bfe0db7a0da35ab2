"""The detection engine's ``ModelProvider`` (anomalies.detection.provider) backed by the cache."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from anomalies.detection.detectors import FittedModel
from anomalies.detection.provider import ModelRequest
from anomalies.detection.table import FloatArray
from modelcache.services.cache import ModelCache, default_cache
from modelcache.services.lookup import cached_models, get_or_train_model


class CachedModelProvider:
    """Two tiers (this process's LRU, the ``anomaly_model_cache`` table) in front of training.

    One provider per detection run: creating it starts a run (LRU copies are revalidated before
    their first use); the engine calls ``prefetch`` once per call and ``get_or_train`` per
    series; the pass calls ``flush()`` at its end (or leaves a ``with`` block).
    """

    def __init__(self, *, cache: ModelCache | None = None) -> None:
        self.cache = cache if cache is not None else default_cache()
        self.cache.begin_run()
        self.outcomes: Counter[str] = Counter()

    def get_or_train(self, request: ModelRequest, x_train: FloatArray, train: Callable[[], FittedModel]) -> FittedModel:
        model, outcome = get_or_train_model(request=request, x_train=x_train, train=train, cache=self.cache)
        self.outcomes[outcome.value] += 1
        return model

    def prefetch(self, requests: Sequence[ModelRequest]) -> int:
        """Load the requests' cached models in at most two queries; returns how many were found."""
        return len(cached_models(model_keys=[r.model_key for r in requests], cache=self.cache))

    def flush(self) -> int:
        return self.cache.flush_usage()

    def __enter__(self) -> CachedModelProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
