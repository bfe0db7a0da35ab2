"""Settings for REIMS Anomaly.

Every environment variable of the project is read here and only here (feature flags, which must
follow the environment at call time, live in ``reims/flags.py``). With no environment at all the
project runs on a SQLite file and an embedded filesystem Celery broker under ``var/``.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _positive_int(name: str, default: int) -> int:
    raw = env.str(name, default=str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a positive integer, got {raw!r}") from None
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive integer, got {raw!r}")
    return value


def _non_negative_int(name: str, default: int) -> int:
    raw = env.str(name, default=str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a non-negative integer, got {raw!r}") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name} must be a non-negative integer, got {raw!r}")
    return value


def _fraction(name: str, default: float) -> float:
    raw = env.str(name, default=str(default)).strip()
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number between 0 and 1, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ImproperlyConfigured(f"{name} must be a number between 0 and 1, got {raw!r}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="true" if default else "false").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off", ""}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


# --- Core -----------------------------------------------------------------------------------
DEBUG = _bool("DEBUG", True)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-reims-anomaly-change-me"  # noqa: S105 - DEBUG only
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "reims.apps.ReimsAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as static files: the docs work offline
    "django_celery_results",
    "django_celery_beat",
    "reims",
    "documents",
    "anomalies",
    "batch_jobs",
    "modelcache",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "kernel.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "reims.urls"
WSGI_APPLICATION = "reims.wsgi.application"
ASGI_APPLICATION = "reims.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_SUPPORTED_DB_SCHEMES = {"postgres", "postgresql", "pgsql", "psql", "sqlite"}


def _database_from_url(url: str) -> dict:
    """Parse DATABASE_URL, stopping start-up with a message that names the variable."""
    scheme = urlparse(url).scheme
    if "://" not in url or scheme not in _SUPPORTED_DB_SCHEMES:
        raise ImproperlyConfigured(
            f"DATABASE_URL is malformed or unsupported: {url!r} "
            "(expected postgres://user@host:port/name or sqlite:////absolute/path.sqlite3)"
        )
    try:
        config = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types for bad URLs
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {url!r} ({exc})") from exc
    if config["ENGINE"].endswith("postgresql") and not config.get("NAME"):
        raise ImproperlyConfigured(f"DATABASE_URL names no database: {url!r}")
    return config


VAR_DIR.mkdir(exist_ok=True)
DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'reims.sqlite3'}")
DATABASES = {"default": _database_from_url(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = _non_negative_int("CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Web, worker and beat share one SQLite file in the embedded mode: wait on locks, use WAL.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so that a real worker process started by the tests sees the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
LOGIN_URL = "admin:login"

# --- Upload limits ----------------------------------------------------------------------------
MAX_UPLOAD_SIZE_MB = _positive_int("MAX_UPLOAD_SIZE_MB", 25)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_UPLOAD_SIZE_MB * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024


# --- REST framework -------------------------------------------------------------------------
def _throttle_rate(name: str, default: str) -> str:
    """A DRF rate such as '60/min' or '5/second', checked at start-up rather than on a request."""
    raw = env.str(name, default=default).strip()
    number, _, period = raw.partition("/")
    if not (number.isdigit() and int(number) > 0 and period[:1] in {"s", "m", "h", "d"}):
        raise ImproperlyConfigured(f"{name} must be a rate such as 60/min, 10/second or 500/day, got {raw!r}")
    return raw


REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "kernel.pagination.StrictPageNumberPagination",
    "PAGE_SIZE": _positive_int("API_PAGE_SIZE", 50),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "kernel.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "job_create": _throttle_rate("THROTTLE_JOB_CREATE", "60/min"),
        "document_import": _throttle_rate("THROTTLE_DOCUMENT_IMPORT", "60/min"),
    },
}
# Request histories of kernel.throttles. The default is per process; with several web processes
# point it at Redis (e.g. redis://127.0.0.1:6379/2) so that the limits hold across them.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": env.cache_url("THROTTLE_CACHE_URL", default="locmemcache://throttle"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "REIMS Anomaly API",
    "DESCRIPTION": "Anomalies in a real-estate portfolio's financial statements.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ and /api/redoc/ load their scripts from our static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status" with different choices: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "DetectionStatusEnum": "anomalies.models.DetectionStatus",
        "JobStatusEnum": "batch_jobs.models.JobStatus",
        "ChunkStatusEnum": "batch_jobs.models.ChunkStatus",
        "ExtractionStatusEnum": "documents.models.ExtractionStatus",
        "ExtractionStatusFilterEnum": "batch_jobs.models.ExtractionStatusFilter",
    },
}

# --- Celery -----------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
# "localhost" only names the machine: without a host kombu warns on every connection.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: kombu's filesystem transport, shared by web, worker and beat processes.
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacknowledged task after visibility_timeout: keep it above the longest
    # task and above every countdown we use.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": _positive_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 7200),
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_CACHE_BACKEND = "django-cache"
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "anomalies.*": {"queue": "anomaly"},
    "batch_jobs.tasks.reprocess_*": {"queue": "anomaly"},
    "batch_jobs.tasks.process_*": {"queue": "anomaly"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A new pool child that has not reported UP within this many seconds is SIGKILLed and replaced.
# Celery's 4 s is shorter than a child's start on a loaded machine: each replacement was killed in
# turn and the pool never ran a task again. A child that truly hangs at start is still replaced.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 30.0
# A pool process whose resident memory passes this after a task is replaced by a fresh one, so a
# long job cannot grow a worker without bound (issue 16: <= 600 MB per process). In KiB.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = _positive_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD_KB", 600_000)
# On a broker connection loss running tasks go on: a chunk's completion is recorded by its row in
# the database, not by the broker's ack, and the reaper re-sends what the broker lost.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Task results older than this are deleted by Celery's own ``celery.backend_cleanup`` (below).
CELERY_RESULT_EXPIRES = timedelta(days=_positive_int("TASK_RESULT_RETENTION_DAYS", 14))
CELERY_BEAT_SCHEDULE: dict = {
    # Beat would add this entry by itself (at 04:00); named here so that it runs on our queue.
    "celery.backend_cleanup": {
        "task": "celery.backend_cleanup",
        "schedule": crontab(hour=3, minute=15),
        "options": {"queue": "default", "expires": 12 * 3600},
    },
}
# Each app declares its own schedule in <app>/beat.py (plain dicts, no models imported).
from anomalies.beat import BEAT_SCHEDULE as _ANOMALIES_BEAT  # noqa: E402
from batch_jobs.beat import BEAT_SCHEDULE as _BATCH_JOBS_BEAT  # noqa: E402
from modelcache.beat import BEAT_SCHEDULE as _MODEL_CACHE_BEAT  # noqa: E402

CELERY_BEAT_SCHEDULE.update(_ANOMALIES_BEAT)
CELERY_BEAT_SCHEDULE.update(_BATCH_JOBS_BEAT)
CELERY_BEAT_SCHEDULE.update(_MODEL_CACHE_BEAT)

# --- Anomaly detection settings (DESIGN.md §7) --------------------------------------------------
PYOD_LLM_MODEL_SELECTION = _bool("PYOD_LLM_MODEL_SELECTION", False)
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="") or None
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT_SECONDS = _positive_int("OPENAI_TIMEOUT_SECONDS", 20)
MODEL_CACHE_TTL_DAYS = _positive_int("MODEL_CACHE_TTL_DAYS", 30)
MODEL_CACHE_MIN_VALIDATION_ACCURACY = _fraction("MODEL_CACHE_MIN_VALIDATION_ACCURACY", 0.5)
# numba's on-disk cache of PyOD's compiled HBOS functions (modelcache.numba_cache), shared by
# every process of this machine: compiled once, not on every process start.
NUMBA_CACHE_DIR = Path(env.str("NUMBA_CACHE_DIR", default=str(VAR_DIR / "numba")))
# The in-process tier of deserialised models, bounded by the sum of their serialised blob sizes.
MODEL_CACHE_LRU_MAX_BYTES = _positive_int("MODEL_CACHE_LRU_MAX_BYTES", 64_000_000)
MODEL_CACHE_SIGNING_KEY = env.str("MODEL_CACHE_SIGNING_KEY", default="") or SECRET_KEY
GPU_DEVICE_ID = _non_negative_int("GPU_DEVICE_ID", 0)
AUTO_SUPPRESSION_CONFIDENCE_THRESHOLD = _fraction("AUTO_SUPPRESSION_CONFIDENCE_THRESHOLD", 0.8)
FEEDBACK_LOOKBACK_DAYS = _positive_int("FEEDBACK_LOOKBACK_DAYS", 90)
XAI_BACKGROUND_SAMPLES = _positive_int("XAI_BACKGROUND_SAMPLES", 100)
BATCH_PROCESSING_CHUNK_SIZE = _positive_int("BATCH_PROCESSING_CHUNK_SIZE", 10)
BATCH_PROCESSING_MAX_CONCURRENT = _positive_int("BATCH_PROCESSING_MAX_CONCURRENT", 3)
BATCH_PROCESSING_TIMEOUT_MINUTES = _positive_int("BATCH_PROCESSING_TIMEOUT_MINUTES", 60)
# A leased chunk stays held this long without a heartbeat before the reaper (every 15 s) may hand
# it to another worker; a running chunk renews its lease every HEARTBEAT seconds, however long it
# runs. A chunk delivered MAX_CHUNK_ATTEMPTS times (e.g. it kills its worker every time) fails.
BATCH_PROCESSING_LEASE_SECONDS = _positive_int("BATCH_PROCESSING_LEASE_SECONDS", 20)
BATCH_PROCESSING_HEARTBEAT_SECONDS = _positive_int("BATCH_PROCESSING_HEARTBEAT_SECONDS", 5)
if BATCH_PROCESSING_HEARTBEAT_SECONDS >= BATCH_PROCESSING_LEASE_SECONDS:
    raise ImproperlyConfigured(
        f"BATCH_PROCESSING_HEARTBEAT_SECONDS={BATCH_PROCESSING_HEARTBEAT_SECONDS} must be below "
        f"BATCH_PROCESSING_LEASE_SECONDS={BATCH_PROCESSING_LEASE_SECONDS}, or live chunks lose their lease"
    )
BATCH_PROCESSING_MAX_CHUNK_ATTEMPTS = _positive_int("BATCH_PROCESSING_MAX_CHUNK_ATTEMPTS", 3)
LAYOUTLM_MODEL_PATH = env.str("LAYOUTLM_MODEL_PATH", default="")
LAYOUTLM_CONFIDENCE_THRESHOLD = _fraction("LAYOUTLM_CONFIDENCE_THRESHOLD", 0.75)

# --- Security (production: DEBUG=false) ---------------------------------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = _non_negative_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Sent on every response (kernel.security). Scripts only from our origin, none inline. Style
# attributes stay allowed: the admin, the API docs and the console's bars set widths inline, and a
# style attribute cannot run script.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        # One JSON object per line for the structured events of kernel.logging.log_event.
        "json": {"()": "kernel.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "events": {"class": "logging.StreamHandler", "formatter": "json"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Not propagated: the root's plain handler would print every event a second time.
        "reims.events": {"handlers": ["events"], "level": LOG_LEVEL, "propagate": False},
    },
}

TESTING = "pytest" in sys.modules
HEALTHCHECK_TIMEOUT_SECONDS = _positive_int("HEALTHCHECK_TIMEOUT_SECONDS", 2)
SESSION_EXPIRY = timedelta(hours=12)
SESSION_COOKIE_AGE = int(SESSION_EXPIRY.total_seconds())
