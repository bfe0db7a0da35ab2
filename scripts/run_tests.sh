#!/usr/bin/env bash
# The project's test command (`make test`). Two pytest passes:
#   1. everything but the real-worker tests, in parallel (-n 2);
#   2. the tests that start real Celery worker processes, one at a time, so two workers never
#      consume each other's tasks from the shared broker.
# Coverage of both passes is combined; the per-layer figures are printed at the end, then one
# closing line with the totals of both passes.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
mkdir -p var/test-reports
rm -f .coverage .coverage.* var/test-reports/*.xml

"$PYTHON" -m pytest -n "${PYTEST_WORKERS:-2}" -m "not worker" \
  --cov --cov-report= --junitxml=var/test-reports/main.xml "$@"
main_rc=$?
"$PYTHON" -m pytest -m worker \
  --cov --cov-append --cov-report= --junitxml=var/test-reports/worker.xml "$@"
worker_rc=$?

echo
echo "== coverage: services =="
"$PYTHON" -m coverage report --include='*/services.py,*/services/*.py' --skip-empty | tail -n 12
echo "== coverage: API =="
"$PYTHON" -m coverage report --include='*/apis.py,*/api.py,*/api/*.py,*/urls.py' --skip-empty | tail -n 12
echo "== coverage: total: $("$PYTHON" -m coverage report --format=total)% =="

"$PYTHON" scripts/junit_totals.py var/test-reports/main.xml var/test-reports/worker.xml
totals_rc=$?

for rc in "$main_rc" "$worker_rc"; do
  if [ "$rc" -eq 5 ]; then echo "pytest collected no tests in one pass: failing" >&2; exit 1; fi
  if [ "$rc" -ne 0 ]; then exit "$rc"; fi
done
exit "$totals_rc"
