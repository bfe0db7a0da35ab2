from __future__ import annotations

import logging

import pytest

from kernel.flags import FLAGS, FeatureDisabled, FeatureFlags

DEFAULTS = {
    "PYOD_ENABLED": True,
    "MODEL_CACHE_ENABLED": True,
    "BATCH_REPROCESSING_ENABLED": True,
    "ACTIVE_LEARNING_ENABLED": True,
    "AUTO_SUPPRESSION_ENABLED": False,
    "SHAP_ENABLED": True,
    "LIME_ENABLED": False,  # not available in this release: never reads "on"
    "PORTFOLIO_BENCHMARKS_ENABLED": False,
    "LAYOUTLM_ENABLED": False,
    "INCREMENTAL_LEARNING_ENABLED": False,  # not available in this release
    "GPU_ACCELERATION_ENABLED": False,
}


@pytest.fixture(autouse=True)
def clean_flag_environment(monkeypatch):
    for flag in FLAGS:
        monkeypatch.delenv(flag.env_var, raising=False)
        monkeypatch.delenv(flag.name, raising=False)


def test_defaults_match_the_design():
    assert FeatureFlags.get_all_flags() == DEFAULTS


def test_environment_change_takes_effect_without_reload(monkeypatch):
    assert FeatureFlags.is_enabled("PYOD_ENABLED") is True
    monkeypatch.setenv("FEATURE_FLAG_PYOD", "false")
    assert FeatureFlags.is_enabled("PYOD_ENABLED") is False
    assert FeatureFlags.is_enabled("FEATURE_FLAG_PYOD") is False
    monkeypatch.setenv("ANOMALY_USE_GPU", "1")
    assert FeatureFlags.get_all_flags()["GPU_ACCELERATION_ENABLED"] is True


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
    assert response.json()["flags"] == {**DEFAULTS, "SHAP_ENABLED": False}
    names = [d["name"] for d in response.json()["details"]]
    assert names == list(DEFAULTS)


def test_what_this_release_cannot_do_never_reads_on(admin_api_client, monkeypatch):
    monkeypatch.setenv("LIME_ENABLED", "true")
    monkeypatch.setenv("INCREMENTAL_LEARNING_ENABLED", "true")
    assert not FeatureFlags.is_enabled("LIME_ENABLED")
    details = {d["name"]: d for d in admin_api_client.get("/api/v1/feature-flags/").json()["details"]}
    for name in ("LIME_ENABLED", "INCREMENTAL_LEARNING_ENABLED"):
        assert details[name]["enabled"] is False and details[name]["available"] is False
        assert details[name]["status"] == "not available in this release"
    assert details["SHAP_ENABLED"]["status"] == "on" and details["SHAP_ENABLED"]["available"] is True


def test_feature_flags_api_needs_login(api_client, db):
    assert api_client.get("/api/v1/feature-flags/").status_code in (401, 403)
