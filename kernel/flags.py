"""Feature flags (DESIGN.md §7).

Flags are read from the process environment at call time, so changing the environment of a
running process (or of the next task) takes effect without a code change or a restart.
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
    # Set when this release cannot do what the flag names: the flag then reads off whatever the
    # environment says, and the API and dashboard say "not available in this release".
    unavailable: str = ""


NOT_IN_RELEASE = "not available in this release"

FLAGS: tuple[Flag, ...] = (
    Flag("PYOD_ENABLED", "FEATURE_FLAG_PYOD", True, "PyOD detectors beside the statistical ones"),
    Flag("MODEL_CACHE_ENABLED", "MODEL_CACHE_ENABLED", True, "Reuse trained models from the cache"),
    Flag("BATCH_REPROCESSING_ENABLED", "BATCH_REPROCESSING_ENABLED", True, "Batch reprocessing jobs"),
    Flag("ACTIVE_LEARNING_ENABLED", "ACTIVE_LEARNING_ENABLED", True, "Analyst feedback changes results"),
    Flag("AUTO_SUPPRESSION_ENABLED", "AUTO_SUPPRESSION_ENABLED", False, "Suppress anomalies like dismissed ones"),
    Flag("SHAP_ENABLED", "SHAP_ENABLED", True, "SHAP explanations"),
    Flag("LIME_ENABLED", "LIME_ENABLED", True, "LIME explanations", NOT_IN_RELEASE),
    Flag("PORTFOLIO_BENCHMARKS_ENABLED", "PORTFOLIO_BENCHMARKS_ENABLED", False, "Cross-property benchmarks"),
    Flag("LAYOUTLM_ENABLED", "LAYOUTLM_ENABLED", False, "LayoutLM extraction of PDFs"),
    Flag(
        "INCREMENTAL_LEARNING_ENABLED",
        "INCREMENTAL_LEARNING_ENABLED",
        True,
        "Incremental model updates (models are refitted by the cache's drift rules instead)",
        NOT_IN_RELEASE,
    ),
    Flag("GPU_ACCELERATION_ENABLED", "ANOMALY_USE_GPU", False, "GPU for detectors that support it"),
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
        super().__init__(f"Feature disabled: {self.flag.env_var} is off")


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, *args)


def _read(flag: Flag) -> bool:
    if flag.unavailable:
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
        return [
            {
                "name": flag.name,
                "env_var": flag.env_var,
                "enabled": _read(flag),
                "default": flag.default,
                "description": flag.description,
                "available": not flag.unavailable,
                "status": flag.unavailable or ("on" if _read(flag) else "off"),
            }
            for flag in FLAGS
        ]

    @staticmethod
    def require(name: str) -> None:
        """Raise FeatureDisabled when the flag is off (callers turn it into 503 or exit 1)."""
        if not FeatureFlags.is_enabled(name):
            raise FeatureDisabled(name)
