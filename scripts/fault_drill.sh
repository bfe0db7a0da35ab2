#!/usr/bin/env bash
# Fault drill of batch reprocessing (issue 17): faults 1-3 (worker SIGKILL, broker restarted empty,
# database connections terminated) on PostgreSQL + a Redis server of the drill's own, with two real
# worker processes and beat. Prints, per fault, the recovery time, processed/total and duplicate
# detections. Exits non-zero when a fault misses its target.
#
#   scripts/fault_drill.sh [--no-load] [--faults 1,2,3] [--at 0.25] [--properties 20 --months 36]
#
# DRILL_DATABASE_URL: a database the drill may fill (default .../reims_batch_drill, created if missing).
# DRILL_REDIS_PORT: the port of the drill's own redis-server (default 6390); it is killed in fault 2.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
PG="${DRILL_PG:-postgres://postgres@127.0.0.1:5432}"
DB_URL="${DRILL_DATABASE_URL:-$PG/reims_batch_drill}"
PORT="${DRILL_REDIS_PORT:-6390}"
DB_NAME="${DB_URL##*/}"
psql "$PG/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='$DB_NAME'" | grep -q 1 \
  || psql "$PG/postgres" -qc "CREATE DATABASE $DB_NAME"
export DATABASE_URL="$DB_URL" CELERY_BROKER_URL="redis://127.0.0.1:$PORT/0"
exec "$PYTHON" scripts/fault_drill.py --redis-port "$PORT" "$@"
