"""Feature flags (DESIGN.md §7).

Flags are read from the process environment at call time, so changing the environment of a
running process (or of the next task) takes effect without a code change or a restart.

A flag whose feature this release does not implement (``available=False``) never reads "on":
``is_enabled`` answers False whatever the environment says, and ``describe`` (the dashboard and
``GET /api/v1/feature-flags/``) shows it as "not available in this release", so no one mistakes a
switch that does nothing for a working feature.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Flag:
    name: str
    env_var: str
    default: bool
    description: str
    available: bool = True  # False: this release has no implementation behind the flag


NOT_AVAILABLE = "not available in this release"


FLAGS: tuple[Flag, ...] = (
    Flag("PYOD_ENABLED", "FEATURE_FLAG_PYOD", True, "PyOD detectors beside the statistical ones"),
    Flag("MODEL_CACHE_ENABLED", "MODEL_CACHE_ENABLED", True, "Reuse trained models from the cache"),
    Flag("BATCH_REPROCESSING_ENABLED", "BATCH_REPROCESSING_ENABLED", True, "Batch reprocessing jobs"),
    Flag("ACTIVE_LEARNING_ENABLED", "ACTIVE_LEARNING_ENABLED", True, "Analyst feedback changes results"),
    Flag("AUTO_SUPPRESSION_ENABLED", "AUTO_SUPPRESSION_ENABLED", False, "Suppress anomalies like dismissed ones"),
    Flag("SHAP_ENABLED", "SHAP_ENABLED", True, "SHAP explanations"),
    Flag("LIME_ENABLED", "LIME_ENABLED", True, "LIME explanations", available=False),
    Flag("PORTFOLIO_BENCHMARKS_ENABLED", "PORTFOLIO_BENCHMARKS_ENABLED", False, "Cross-property benchmarks"),
    Flag("LAYOUTLM_ENABLED", "LAYOUTLM_ENABLED", False, "LayoutLM extraction of PDFs", available=False),
    Flag(
        "INCREMENTAL_LEARNING_ENABLED",
        "INCREMENTAL_LEARNING_ENABLED",
        True,
        "Incremental model updates (the model cache's drift rules refit models instead)",
        available=False,
    ),
    Flag("GPU_ACCELERATION_ENABLED", "ANOMALY_USE_GPU", False, "GPU for detectors that support it", available=False),
)
_BY_NAME: dict[str, Flag] = {}
for _flag in FLAGS:
    _BY_NAME[_flag.name] = _flag
    _BY_NAME[_flag.env_var] = _flag

_warned: set[str] = set()


class FeatureDisabled(Exception):
    """Raised when code that needs a feature runs while its flag is off."""

    def __init__(self, flag_name: str) -> None:
        self.flag = _BY_NAME[flag_name]
        reason = NOT_AVAILABLE if not self.flag.available else "is off"
        super().__init__(f"Feature disabled: {self.flag.env_var} {reason}")


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


def _read(flag: Flag) -> bool:
    if not flag.available:
        return False
    # The environment name wins; the flag's own name is accepted as an alias.
    for var in (flag.env_var, flag.name):
        raw = os.environ.get(var)
        if raw is None:
            continue
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        _warn_once(f"invalid:{var}:{value}", "Ignoring %s=%r: not a boolean; using default %s", var, raw, flag.default)
        return flag.default
    return flag.default


class FeatureFlags:
    """Read-only access to the flags; every call reads the environment again."""

    @staticmethod
    def is_enabled(name: str) -> bool:
        flag = _BY_NAME.get(name)
        if flag is None:
            _warn_once(f"unknown:{name}", "Unknown feature flag %r: treated as disabled", name)
            return False
        return _read(flag)

    @staticmethod
    def get_all_flags() -> dict[str, bool]:
        return {flag.name: _read(flag) for flag in FLAGS}

    @staticmethod
    def describe() -> list[dict[str, object]]:
        """Each flag with ``available`` (does this release implement it) and ``state``: "on", "off"
        or "not available in this release"."""
        described = []
        for flag in FLAGS:
            enabled = _read(flag)
            described.append(
                {
                    "name": flag.name,
                    "env_var": flag.env_var,
                    "enabled": enabled,
                    "available": flag.available,
                    "state": NOT_AVAILABLE if not flag.available else "on" if enabled else "off",
                    "default": flag.default,
                    "description": flag.description,
                }
            )
        return described

    @staticmethod
    def require(name: str) -> None:
        """Raise FeatureDisabled when the flag is off (callers turn it into 503 or exit 1)."""
        if not FeatureFlags.is_enabled(name):
            raise FeatureDisabled(name)
