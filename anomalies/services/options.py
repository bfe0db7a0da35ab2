"""The engine's options for one pass, read from flags and settings when the pass starts."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError

from anomalies.detection.provider import ModelProvider, TrainingProvider
from anomalies.detection.selection import LLMConfig
from kernel.flags import FeatureFlags
from modelcache.services import CachedModelProvider

logger = logging.getLogger(__name__)


@dataclass
class EngineOptions:
    use_pyod: bool
    llm: LLMConfig | None
    model_provider: ModelProvider
    seed: int = 0

    def results_key(self) -> tuple:
        """What, besides the data, decides the engine's results: a result kept under another key
        is not reused (a flag changed between two chunks of a worker)."""
        llm = (self.llm.base_url, self.llm.model) if self.llm is not None else None
        return (self.use_pyod, llm, self.seed, type(self.model_provider).__name__)


def engine_options() -> EngineOptions:
    """Flags and settings read now, so that a changed environment applies to the next pass."""
    use_llm = bool(settings.PYOD_LLM_MODEL_SELECTION and settings.OPENAI_API_KEY)
    llm = (
        LLMConfig(
            api_key=settings.OPENAI_API_KEY,
            base_url=settings.OPENAI_BASE_URL,
            model=settings.OPENAI_MODEL,
            timeout_seconds=float(settings.OPENAI_TIMEOUT_SECONDS),
        )
        if use_llm
        else None
    )
    return EngineOptions(
        use_pyod=FeatureFlags.is_enabled("PYOD_ENABLED"),
        llm=llm,
        model_provider=model_provider(),
    )


def model_provider() -> ModelProvider:
    """The model cache's provider when MODEL_CACHE_ENABLED is on, otherwise one that only trains."""
    if not FeatureFlags.is_enabled("MODEL_CACHE_ENABLED"):
        return TrainingProvider()
    return CachedModelProvider()


def _flush_provider(provider: ModelProvider) -> None:
    try:
        provider.flush()
    except DatabaseError:  # usage counters are statistics: a failed flush must not fail a pass
        logger.exception("model cache usage flush failed")
