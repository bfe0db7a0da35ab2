"""Detection speed: ``detect_anomalies --all`` over a demo portfolio, on a database of its own.

    python benchmarks/detection_speed.py [--properties 20] [--months 36] [--seed 7]

The portfolio is generated and imported once into a template SQLite database under
``var/bench/detection_speed/`` (kept for the next run); every measured pass runs on a fresh copy,
in a new process, as a user runs the command:

1. first pass: no detection stored, no model cached (selection, training, scoring, writing);
2. second pass: the same command again over unchanged inputs (a rerun): models come from the
   model cache, and only rows that changed are written;
3. the same two passes with PyOD off, for the PyOD-on / PyOD-off ratio.

Each figure is printed beside its target, with the load average of the machine while it ran
(the wall time of a pass on a loaded machine says little; its CPU time is printed too).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKDIR = ROOT / "var" / "bench" / "detection_speed"

FIRST_PASS_TARGET_S = 12.0
SECOND_PASS_TARGET_S = 6.0
RERUN_SPEEDUP_TARGET = 3.0
PYOD_RATIO_TARGET = 1.25
SNAPSHOT_SQL = (
    "SELECT document_id, account_code, is_anomaly, anomaly_score, anomaly_type, severity, expected_value, "
    "status, detector FROM anomaly_detections ORDER BY document_id, account_code"
)


@dataclass
class Pass:
    wall_s: float
    cpu_s: float
    rows_written: int
    load_before: float
    load_after: float

    def line(self, label: str, target: str) -> str:
        return (
            f"  {label:<28} {self.wall_s:6.1f} s wall ({self.cpu_s:5.1f} s CPU)   target {target:<10}"
            f" [load 1 min {self.load_before:.2f} -> {self.load_after:.2f}]"
        )


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _env(database: Path, *, pyod: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = f"sqlite:///{database}"
    env["FEATURE_FLAG_PYOD"] = "true" if pyod else "false"
    return env


def template(properties: int, months: int, seed: int) -> Path:
    """The imported portfolio, made once per size and seed."""
    path = WORKDIR / f"portfolio-{properties}x{months}-seed{seed}.sqlite3"
    if path.exists():
        return path
    WORKDIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    env = _env(partial, pyod=True)
    started = time.perf_counter()
    _run([sys.executable, "manage.py", "migrate", "-v0"], env)
    _run(
        [
            sys.executable,
            "manage.py",
            "generate_demo_portfolio",
            f"--properties={properties}",
            f"--months={months}",
            f"--seed={seed}",
            f"--output={WORKDIR / 'csv'}",
            "--load",
            "--no-progress",
        ],
        env,
    )
    partial.rename(path)
    print(f"portfolio {properties}x{months} generated and imported in {time.perf_counter() - started:.0f} s -> {path}")
    return path


def detect_pass(database: Path, *, pyod: bool) -> Pass:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    out = _run([sys.executable, "manage.py", "detect_anomalies", "--all", "--no-progress"], _env(database, pyod=pyod))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    written = re.search(r"Rows written: (\d+)", out)
    return Pass(wall, cpu, int(written.group(1)) if written else -1, load_before, os.getloadavg()[0])


def snapshot(database: Path) -> list[tuple]:
    with sqlite3.connect(database) as db:
        return db.execute(SNAPSHOT_SQL).fetchall()


def portfolio_size(database: Path) -> tuple[int, int]:
    with sqlite3.connect(database) as db:
        documents = db.execute("SELECT COUNT(*) FROM document_uploads WHERE is_latest").fetchone()[0]
        lines = db.execute("SELECT COUNT(*) FROM line_items").fetchone()[0]
    return documents, lines


def two_passes(source: Path, *, pyod: bool) -> tuple[Pass, Pass, bool]:
    database = WORKDIR / ("run-pyod.sqlite3" if pyod else "run-statistical.sqlite3")
    _remove(database)  # with a journal left by an earlier run beside it, a fresh copy reads as corrupt
    shutil.copyfile(source, database)
    _run([sys.executable, "manage.py", "migrate", "-v0"], _env(database, pyod=pyod))  # a template of an older schema
    first = detect_pass(database, pyod=pyod)
    after_first = snapshot(database)
    second = detect_pass(database, pyod=pyod)
    identical = snapshot(database) == after_first and len(after_first) > 0
    _remove(database)
    return first, second, identical


def _remove(database: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--properties", type=int, default=20)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    source = template(args.properties, args.months, args.seed)
    documents, lines = portfolio_size(source)
    print(
        f"detect_anomalies --all: {args.properties} properties x {args.months} months "
        f"({documents:,} documents, {lines:,} lines), SQLite, each pass a new process"
    )
    first, second, identical = two_passes(source, pyod=True)
    print("PyOD on")
    print(first.line("first pass", f"<= {FIRST_PASS_TARGET_S:.0f} s") + f" {_verdict(first.wall_s <= FIRST_PASS_TARGET_S)}")
    print(
        second.line("second pass (rerun)", f"<= {SECOND_PASS_TARGET_S:.0f} s")
        + f" {_verdict(second.wall_s <= SECOND_PASS_TARGET_S)}"
    )
    speedup = first.wall_s / second.wall_s
    cpu_speedup = first.cpu_s / second.cpu_s
    print(
        f"  rerun speed-up               {speedup:6.1f} x wall ({cpu_speedup:.1f} x CPU)   target >= "
        f"{RERUN_SPEEDUP_TARGET:.0f} x      {_verdict(speedup >= RERUN_SPEEDUP_TARGET)}"
    )
    print(f"  rows written on rerun        {second.rows_written:6d}   (first pass {first.rows_written:,})   target 0")
    print(f"  results identical on rerun   {'yes' if identical else 'NO':>6}   target yes")

    off_first, off_second, _ = two_passes(source, pyod=False)
    print("PyOD off (statistical detectors only)")
    print(off_first.line("first pass", "-"))
    print(off_second.line("second pass (rerun)", "-"))
    for label, on, off in (("first pass", first, off_first), ("second pass", second, off_second)):
        ratio = on.wall_s / off.wall_s
        print(
            f"  PyOD-on / PyOD-off, {label:<12} {ratio:5.2f} wall ({on.cpu_s / off.cpu_s:.2f} CPU)   "
            f"target <= {PYOD_RATIO_TARGET}   {_verdict(ratio <= PYOD_RATIO_TARGET)}"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of a detection process: {peak_mb:.0f} MB")
    print(f"load average now (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
