from __future__ import annotations

import logging

import pytest

from kernel.flags import FLAGS, NOT_AVAILABLE, FeatureDisabled, FeatureFlags

DEFAULTS = {
    "PYOD_ENABLED": True,
    "MODEL_CACHE_ENABLED": True,
    "BATCH_REPROCESSING_ENABLED": True,
    "ACTIVE_LEARNING_ENABLED": True,
    "AUTO_SUPPRESSION_ENABLED": False,
    "SHAP_ENABLED": True,
    "LIME_ENABLED": True,
    "PORTFOLIO_BENCHMARKS_ENABLED": False,
    "LAYOUTLM_ENABLED": False,
    "INCREMENTAL_LEARNING_ENABLED": True,
    "GPU_ACCELERATION_ENABLED": False,
}
# What this release cannot do reads off whatever its variable says.
NOT_IMPLEMENTED = {"LIME_ENABLED", "LAYOUTLM_ENABLED", "GPU_ACCELERATION_ENABLED", "INCREMENTAL_LEARNING_ENABLED"}
EFFECTIVE = {name: value and name not in NOT_IMPLEMENTED for name, value in DEFAULTS.items()}


@pytest.fixture(autouse=True)
def clean_flag_environment(monkeypatch):
    for flag in FLAGS:
        monkeypatch.delenv(flag.env_var, raising=False)
        monkeypatch.delenv(flag.name, raising=False)


def test_defaults_match_the_design():
    assert {flag.name: flag.default for flag in FLAGS} == DEFAULTS
    assert FeatureFlags.get_all_flags() == EFFECTIVE


@pytest.mark.parametrize("name", sorted(NOT_IMPLEMENTED))
def test_a_flag_this_release_cannot_honour_never_reads_on(monkeypatch, name):
    flag = next(f for f in FLAGS if f.name == name)
    monkeypatch.setenv(flag.env_var, "true")
    assert FeatureFlags.is_enabled(name) is False
    described = next(d for d in FeatureFlags.describe() if d["name"] == name)
    assert described["state"] == NOT_AVAILABLE and described["available"] is False
    with pytest.raises(FeatureDisabled, match="not available in this release"):
        FeatureFlags.require(name)


def test_environment_change_takes_effect_without_reload(monkeypatch):
    assert FeatureFlags.is_enabled("PYOD_ENABLED") is True
    monkeypatch.setenv("FEATURE_FLAG_PYOD", "false")
    assert FeatureFlags.is_enabled("PYOD_ENABLED") is False
    assert FeatureFlags.is_enabled("FEATURE_FLAG_PYOD") is False
    monkeypatch.setenv("MODEL_CACHE_ENABLED", "0")
    assert FeatureFlags.get_all_flags()["MODEL_CACHE_ENABLED"] is False


def test_flag_name_is_accepted_as_alias(monkeypatch):
    monkeypatch.setenv("PYOD_ENABLED", "off")
    assert FeatureFlags.is_enabled("PYOD_ENABLED") is False


def test_unknown_flag_is_false_and_logged_once(caplog):
    with caplog.at_level(logging.WARNING, logger="kernel.flags"):
        assert FeatureFlags.is_enabled("NO_SUCH_FLAG_X") is False
        assert FeatureFlags.is_enabled("NO_SUCH_FLAG_X") is False
    assert sum("NO_SUCH_FLAG_X" in r.getMessage() for r in caplog.records) == 1


def test_invalid_value_falls_back_to_default(monkeypatch):
    monkeypatch.setenv("MODEL_CACHE_ENABLED", "maybe")
    assert FeatureFlags.is_enabled("MODEL_CACHE_ENABLED") is True


def test_require_raises_naming_the_variable(monkeypatch):
    monkeypatch.setenv("BATCH_REPROCESSING_ENABLED", "false")
    with pytest.raises(FeatureDisabled, match="BATCH_REPROCESSING_ENABLED"):
        FeatureFlags.require("BATCH_REPROCESSING_ENABLED")


def test_feature_flags_api(admin_api_client, monkeypatch):
    monkeypatch.setenv("SHAP_ENABLED", "false")
    response = admin_api_client.get("/api/v1/feature-flags/")
    assert response.status_code == 200
    assert response.json()["flags"] == {**EFFECTIVE, "SHAP_ENABLED": False}
    details = response.json()["details"]
    assert [d["name"] for d in details] == list(DEFAULTS)
    states = {d["name"]: d["state"] for d in details}
    assert states["SHAP_ENABLED"] == "off" and states["PYOD_ENABLED"] == "on"
    assert {name for name, state in states.items() if state == NOT_AVAILABLE} == NOT_IMPLEMENTED


def test_feature_flags_api_needs_login(api_client, db):
    assert api_client.get("/api/v1/feature-flags/").status_code in (401, 403)
