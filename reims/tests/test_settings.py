"""Start-up validation: a bad setting stops the process with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings


def _start(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=settings.BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "reims.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BATCH_PROCESSING_CHUNK_SIZE", "abc"),
        ("BATCH_PROCESSING_CHUNK_SIZE", "0"),
        ("BATCH_PROCESSING_MAX_CONCURRENT", "-1"),
        ("MODEL_CACHE_TTL_DAYS", "ten"),
        ("AUTO_SUPPRESSION_CONFIDENCE_THRESHOLD", "1.5"),
        ("PYOD_LLM_MODEL_SELECTION", "sometimes"),
        ("MODEL_CACHE_LRU_MAX_BYTES", "0"),
        ("CELERY_WORKER_MAX_MEMORY_PER_CHILD_KB", "lots"),
    ],
)
def test_invalid_setting_stops_startup_naming_the_variable(variable, value):
    result = _start({variable: value})
    assert result.returncode != 0
    assert variable in result.stderr
    assert "ImproperlyConfigured" in result.stderr


@pytest.mark.parametrize("url", ["not-a-url", "mysqlx://x", "postgres://"])
def test_malformed_database_url_stops_startup(url):
    result = _start({"DATABASE_URL": url})
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


def test_valid_settings_start():
    result = _start({"BATCH_PROCESSING_CHUNK_SIZE": "25"})
    assert result.returncode == 0, result.stderr


def test_defaults_of_the_design():
    assert settings.BATCH_PROCESSING_CHUNK_SIZE == int(os.environ.get("BATCH_PROCESSING_CHUNK_SIZE", 10))
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_production_settings_pass_the_deploy_check():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "reims.settings",
        "DEBUG": "false",
        "SECRET_KEY": "x" * 20 + "-production-like-secret-key-with-enough-entropy-0123456789",
        "ALLOWED_HOSTS": "reims.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_without_secret_key_stops_startup():
    result = _start({"DEBUG": "false", "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_worker_memory_and_lru_bound_come_from_the_environment():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from reims.celery import app; from django.conf import settings; "
            "print(app.conf.worker_max_memory_per_child, settings.MODEL_CACHE_LRU_MAX_BYTES)",
        ],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "reims.settings",
            "CELERY_WORKER_MAX_MEMORY_PER_CHILD_KB": "400000",
            "MODEL_CACHE_LRU_MAX_BYTES": "1000000",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split()[-2:] == ["400000", "1000000"]
