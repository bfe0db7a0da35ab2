"""schemathesis against the project's own OpenAPI schema (drf-spectacular, /api/schema/).

Every operation of /api/v1/ is called with generated requests (schema examples, boundary
"coverage" values, and fuzzed positive and negative inputs), authenticated with a superuser's
token, through the Django WSGI application in this process. Checks: no 5xx
(``not_a_server_error``) and every documented response matches its schema
(``response_schema_conformance``).

The database is transactional (really committed), and a real Celery worker consumes the
project's queues against it, so work an operation enqueues on commit (a reprocessing job) really
runs instead of piling up in the broker. The number of examples per operation is bounded
(SCHEMATHESIS_MAX_EXAMPLES, default 15) so that the module runs in about a minute.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from django.contrib.auth.models import User
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from reims.testing import WorkerProcess

pytestmark = [pytest.mark.slow, pytest.mark.worker]

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "15"))
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def module_worker(django_db_setup, django_db_blocker) -> Iterator[WorkerProcess]:
    """One worker for the whole module (starting one per operation would double the run time)."""
    with django_db_blocker.unblock():
        worker = WorkerProcess()
        try:
            worker.wait_ready()
            yield worker
        finally:
            worker.stop()


def _load_schema() -> schemathesis.BaseSchema:
    """The live schema, served by the WSGI application (no database needed to build it).

    Loaded at import, not from a fixture: schemathesis' lazy ``from_fixture`` loader sets
    ``node._nodeid``, which pytest 9 no longer has.
    """
    from reims.wsgi import application

    config = schemathesis.Config()
    config.projects.default.generation.update(max_examples=MAX_EXAMPLES)
    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application, config=config)
    return loaded.include(path_regex=r"^/api/v1/")


@pytest.fixture
def auth_headers(transactional_db) -> dict[str, str]:
    user = User.objects.filter(username="fuzzer").first() or User.objects.create_superuser(
        "fuzzer", "fuzzer@example.com", "pw-fuzzer-very-secret-1"
    )
    token, _ = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


schema = _load_schema()


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, auth_headers, module_worker):
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
