"""Security and robustness across the whole API, driven by its OpenAPI schema.

Every operation the schema lists is tried as an anonymous user, with a forged (CSRF-less) session
request, with huge ids, with odd pagination and with SQL-looking and unicode query values: each
gets a clear 4xx (never a 5xx) and no table changes. Also: the structured event log and the
write throttles of kernel.logging / kernel.throttles.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import User
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from kernel.logging import EVENT_LOGGER_NAME, REDACTED, JsonFormatter, is_secret_key, log_event, redact
from kernel.throttles import THROTTLE_CACHE_ALIAS, DocumentImportThrottle, JobCreateThrottle, ScopedWriteThrottle

HUGE_ID = "99999999999999999999"  # above PostgreSQL's bigint
SQL_LOOKING = "1' OR '1'='1'; DROP TABLE document_uploads; --"
UNICODE = "Bürohaus 東京 🏢 \u202e"
PROJECT_APPS = ("documents", "anomalies", "batch_jobs", "modelcache", "authtoken", "auth")
OWNERS = {
    "/api/v1/documents": "documents",
    "/api/v1/anomalies": "anomalies",
    "/api/v1/selection-log": "anomalies",
    "/api/v1/batch-reprocessing": "batch_jobs",
    "/api/v1/model-cache": "modelcache",
    "/api/v1/feature-flags": "reims",
}


def _api_operations() -> list[tuple[str, str, dict]]:
    """(METHOD, path template, operation) of every /api/v1/ operation in the OpenAPI schema."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, item in sorted(schema["paths"].items()):
        for method, operation in sorted(item.items()):
            if path.startswith("/api/v1/") and method in {"get", "post", "put", "patch", "delete"}:
                operations.append((method.upper(), path, operation))
    return operations


OPERATIONS = _api_operations()


def _owner(path: str) -> str:
    return next((owner for prefix, owner in OWNERS.items() if path.startswith(prefix)), "unknown")


def _fill(path: str, value: str = "1") -> str:
    return re.sub(r"\{[^}]+\}", value, path)


def _op_id(op: tuple[str, str, dict]) -> str:
    return f"{op[0]} {op[1]}"


def _table_counts() -> dict[str, int]:
    counts = {}
    for label in PROJECT_APPS:
        for model in apps.get_app_config(label).get_models():
            counts[model._meta.db_table] = model.objects.count()
    return counts


@pytest.fixture(autouse=True)
def _fresh_throttle_history() -> Iterator[None]:
    caches[THROTTLE_CACHE_ALIAS].clear()
    yield
    caches[THROTTLE_CACHE_ALIAS].clear()


@pytest.fixture
def superuser_api(db) -> APIClient:
    user = User.objects.create_superuser("root", "root@example.com", "pw-root-very-secret-1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def some_documents(db) -> list[int]:
    from documents.services import UploadedSource, documents_import
    from documents.tests.helpers import csv_bytes, statement_rows

    rows = statement_rows() + statement_rows("P200", period="2024-02")
    return documents_import(files=[UploadedSource("seed.csv", csv_bytes(rows))]).document_ids


def test_the_schema_lists_the_api():
    paths = {path for _, path, _ in OPERATIONS}
    assert "/api/v1/documents/" in paths and "/api/v1/feature-flags/" in paths
    assert len(OPERATIONS) >= 10


# --- Anonymous -----------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("operation", OPERATIONS, ids=_op_id)
def test_anonymous_requests_are_refused(operation, some_documents):
    method, path, _ = operation
    before = _table_counts()
    response = APIClient().generic(method, _fill(path, str(some_documents[0])))
    assert response.status_code in (401, 403), f"{_owner(path)}: {method} {path} -> {response.status_code}"
    assert _table_counts() == before


@pytest.mark.django_db
def test_healthz_is_open_to_anonymous_users():
    assert Client().get("/healthz").status_code in (200, 503)  # 503 names what is down; never a login


@pytest.mark.django_db
def test_a_bad_token_is_refused():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    # 403, not 401: DRF answers 401 only when the FIRST authenticator (session) names a scheme.
    assert client.get("/api/v1/documents/").status_code in (401, 403)


# --- CSRF ------------------------------------------------------------------------------------------
WRITES = [op for op in OPERATIONS if op[0] != "GET"]


def _csrf_client(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("operation", WRITES, ids=_op_id)
def test_forged_session_writes_without_the_csrf_token_are_refused(operation, some_documents):
    method, path, _ = operation
    user = User.objects.create_superuser("admin2", "a@example.com", "pw-admin-very-secret-2")
    before = _table_counts()
    response = _csrf_client(user).generic(method, _fill(path, str(some_documents[0])), "{}", "application/json")
    assert response.status_code == 403, f"{_owner(path)}: {method} {path} -> {response.status_code}"
    assert "CSRF" in response.json()["detail"]
    assert _table_counts() == before


@pytest.mark.django_db
def test_the_same_session_write_with_the_csrf_token_goes_through():
    from django.core.files.uploadedfile import SimpleUploadedFile

    from documents.models import DocumentUpload
    from documents.tests.helpers import csv_bytes, statement_rows

    client = _csrf_client(User.objects.create_superuser("admin3", "b@example.com", "pw-admin-very-secret-3"))
    upload = {"file": SimpleUploadedFile("a.csv", csv_bytes(statement_rows()))}
    assert client.post("/api/v1/documents/", upload).status_code == 403
    client.get("/admin/documents/documentupload/import/")  # a form page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    upload = {"file": SimpleUploadedFile("a.csv", csv_bytes(statement_rows()))}
    response = client.post("/api/v1/documents/", upload, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201, response.content
    assert DocumentUpload.objects.count() == 1


# --- Huge ids ------------------------------------------------------------------------------------------
WITH_IDS = [op for op in OPERATIONS if "{" in op[1]]


@pytest.mark.django_db
@pytest.mark.parametrize("operation", WITH_IDS, ids=_op_id)
@pytest.mark.parametrize("value", [HUGE_ID, "9223372036854775808", "0"])
def test_huge_and_unknown_ids_answer_a_clear_4xx(operation, value, superuser_api, some_documents):
    method, path, _ = operation
    before = _table_counts()
    response = superuser_api.generic(method, _fill(path, value), "{}", "application/json")
    # A write may validate its (empty) body first: 400 is as clear as 404 there.
    expected = (404,) if method == "GET" else (400, 404)
    assert response.status_code in expected, f"{_owner(path)}: {method} {_fill(path, value)} -> {response.status_code}"
    assert _table_counts() == before


# --- Query strings ------------------------------------------------------------------------------------
def _query_parameters(operation: dict) -> list[str]:
    return [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]


LISTS = [op for op in OPERATIONS if op[0] == "GET" and "{" not in op[1]]
PAGINATED = [op for op in LISTS if "page_size" in _query_parameters(op[2]) or "page" in _query_parameters(op[2])]


@pytest.mark.django_db
@pytest.mark.parametrize("operation", PAGINATED, ids=_op_id)
@pytest.mark.parametrize("query", ["page_size=-1", "page=-3", "page=0", f"page={HUGE_ID}", "page_size=abc"])
def test_bad_pagination_answers_a_clear_4xx(operation, query, superuser_api, some_documents):
    method, path, op = operation
    if query.startswith("page_size") and "page_size" not in _query_parameters(op):
        pytest.skip("no page_size parameter here")
    response = superuser_api.get(f"{path}?{query}")
    failure = f"{_owner(path)}: GET {path}?{query} -> {response.status_code}"
    assert 400 <= response.status_code < 500, failure
    assert "detail" in response.json() or "page_size" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("operation", LISTS, ids=_op_id)
@pytest.mark.parametrize(
    "value", [SQL_LOOKING, UNICODE, "\x00", "%", HUGE_ID, "-1"], ids=["sql", "unicode", "nul", "percent", "huge", "neg"]
)
def test_hostile_query_values_never_fail_on_the_server(operation, value, superuser_api, some_documents):
    method, path, op = operation
    names = _query_parameters(op) or ["q"]
    before = _table_counts()
    failures = []
    superuser_api.raise_request_exception = False  # a 500 is a finding to list, not a crash of the test
    for name in names:
        response = superuser_api.get(path, {name: value})
        if response.status_code >= 500 or response.status_code not in (200, 400, 404):
            failures.append(f"{_owner(path)}: GET {path}?{name}={value!r} -> {response.status_code}")
        elif response.status_code == 200 and isinstance(response.json(), dict) and "count" in response.json():
            unfiltered = superuser_api.get(path).json()["count"]
            if response.json()["count"] > unfiltered:
                failures.append(f"{_owner(path)}: GET {path}?{name}={value!r} matched more rows than no filter")
    assert not failures, "\n".join(failures)
    assert _table_counts() == before


@pytest.mark.django_db
def test_sql_looking_filters_match_nothing_and_leave_the_tables_whole(superuser_api, some_documents):
    response = superuser_api.get("/api/v1/documents/", {"property": SQL_LOOKING})
    assert response.status_code == 200 and response.json()["count"] == 0
    assert superuser_api.get("/api/v1/documents/").json()["count"] == len(some_documents)


# --- Structured event log ------------------------------------------------------------------------------
@pytest.fixture
def event_lines() -> Iterator[Callable[[], list[dict]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(EVENT_LOGGER_NAME)
    logger.addHandler(handler)

    def lines() -> list[dict]:
        text = stream.getvalue()
        return [json.loads(line) for line in text.splitlines()]

    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def test_log_event_writes_one_json_line(event_lines):
    payload = log_event("job_state", job_id=7, status="running", previous="queued", note="two\nlines")
    (line,) = event_lines()
    assert line == {**payload, "level": "INFO"}
    assert (line["event"], line["job_id"], line["status"], line["note"]) == ("job_state", 7, "running", "two\nlines")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])


def test_values_without_a_json_form_are_written_as_text(event_lines):
    from datetime import UTC, datetime
    from decimal import Decimal
    from pathlib import Path

    log_event("values", amount=Decimal("1234.50"), at=datetime(2024, 1, 31, 9, 0, tzinfo=UTC), path=Path("/x"))
    (line,) = event_lines()
    assert (line["amount"], line["at"], line["path"]) == ("1234.50", "2024-01-31T09:00:00.000Z", "/x")


def test_secrets_never_reach_the_log(event_lines):
    log_event(
        "login",
        user_id=3,
        password="hunter2",
        api_key="sk-123",
        OPENAI_API_KEY="sk-456",
        headers={"Authorization": "Token abcdef", "X-Api-Key": "k", "Accept": "json"},
        nested=[{"refresh_token": "r"}, {"client_secret": "s"}],
        note="Bearer eyJhbGciOi",
        session_key="abc",
    )
    (line,) = event_lines()
    text = json.dumps(line)
    for secret in ("hunter2", "sk-123", "sk-456", "abcdef", "eyJhbGciOi", '"k"', '"r"', '"s"', '"abc"'):
        assert secret not in text, secret
    assert line["password"] == REDACTED and line["headers"]["Accept"] == "json" and line["user_id"] == 3
    assert line["nested"] == [{"refresh_token": REDACTED}, {"client_secret": REDACTED}]


def test_redaction_rules():
    for key in ("password", "PASSWD", "token", "auth_token", "secret", "api_key", "apikey", "Authorization", "Cookie"):
        assert is_secret_key(key), key
    for key in ("user_id", "documents_new", "file_names", "duration_ms", "status"):
        assert not is_secret_key(key), key
    deep: dict = {"a": {}}
    cursor = deep["a"]
    for _ in range(20):
        cursor["a"] = {}
        cursor = cursor["a"]
    assert "[nested]" in json.dumps(redact(deep))  # bounded, no recursion error


def test_reserved_keys_cannot_be_overwritten(event_lines):
    log_event("import", event="spoofed", ts="yesterday", logger="other")
    (line,) = event_lines()
    assert (line["event"], line["level"]) == ("import", "INFO") and line["ts"] != "yesterday"
    assert (line["field_event"], line["field_ts"], line["field_logger"]) == ("spoofed", "yesterday", "other")


def test_other_records_on_the_event_logger_are_json_too(event_lines):
    logger = logging.getLogger(EVENT_LOGGER_NAME)
    try:
        raise ValueError("bad\nthing with Token abc")
    except ValueError:
        logger.exception("failed for password=%s", "hunter2")
    (line,) = event_lines()
    assert (line["event"], line["level"], line["exc_type"]) == ("log", "ERROR", "ValueError")
    assert "\n" not in line["exc_message"]


def test_settings_send_events_through_the_json_formatter():
    config = settings.LOGGING
    assert config["formatters"]["json"]["()"] == "kernel.logging.JsonFormatter"
    assert config["loggers"][EVENT_LOGGER_NAME]["propagate"] is False
    handlers = logging.getLogger(EVENT_LOGGER_NAME).handlers
    assert any(isinstance(h.formatter, JsonFormatter) for h in handlers)


def test_a_django_process_prints_events_as_json_lines():
    code = (
        "import django; django.setup();"
        "from kernel.logging import log_event; log_event('documents_import', files=1, password='hunter2')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "reims.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(text) for text in result.stderr.splitlines() if text.startswith("{")]
    assert (line["event"], line["files"], line["password"]) == ("documents_import", 1, REDACTED)
    assert "hunter2" not in result.stderr


# --- Throttles ------------------------------------------------------------------------------------------
class _JobCreateView(APIView):
    permission_classes: list = []  # so that anonymous requests reach the throttle
    throttle_classes = [JobCreateThrottle]

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True}, status=201)


def _rates(**rates: str) -> dict:
    current = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    return {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {**current, **rates}}


@pytest.mark.django_db
def test_job_create_throttle_limits_writes_per_user():
    factory = APIRequestFactory()
    view = _JobCreateView.as_view()
    alice = User.objects.create_user("alice", password="pw-alice-1")
    bob = User.objects.create_user("bob", password="pw-bob-1")

    def call(method: str, user: User) -> int:
        request = getattr(factory, method)("/jobs")
        force_authenticate(request, user)
        return view(request).status_code

    with override_settings(REST_FRAMEWORK=_rates(job_create="2/min")):
        assert [call("post", alice) for _ in range(3)] == [201, 201, 429]
        assert call("get", alice) == 200  # reads are not counted
        assert call("post", bob) == 201
    with override_settings(REST_FRAMEWORK=_rates(job_create="5/min")):
        assert call("post", alice) == 201  # the new rate applies at once


@pytest.mark.django_db
def test_anonymous_writes_are_throttled_by_address():
    factory = APIRequestFactory()
    view = _JobCreateView.as_view()
    with override_settings(REST_FRAMEWORK=_rates(job_create="1/min")):
        first = view(factory.post("/jobs", REMOTE_ADDR="10.0.0.1"))
        second = view(factory.post("/jobs", REMOTE_ADDR="10.0.0.1"))
        other = view(factory.post("/jobs", REMOTE_ADDR="10.0.0.2"))
    assert (first.status_code, second.status_code, other.status_code) == (201, 429, 201)
    assert int(second["Retry-After"]) > 0


def test_throttle_scopes_and_missing_rates():
    assert (DocumentImportThrottle.scope, JobCreateThrottle.scope) == ("document_import", "job_create")

    class Unconfigured(ScopedWriteThrottle):
        scope = "nowhere"

    with pytest.raises(ImproperlyConfigured, match="nowhere"):
        Unconfigured()


@pytest.mark.parametrize("value", ["fast", "0/min", "10/fortnight", "-1/s"])
def test_a_bad_throttle_rate_stops_startup(value):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "reims.settings", "THROTTLE_JOB_CREATE": value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "THROTTLE_JOB_CREATE" in result.stderr and "ImproperlyConfigured" in result.stderr


@pytest.mark.django_db
def test_an_oversized_json_body_gets_a_json_413_on_any_api(superuser_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = superuser_api.post("/api/v1/batch-reprocessing/reprocess", {"job_name": "x" * 5000}, format="json")
    assert response.status_code == 413
    assert response.json()["detail"] == "Request body too large."
