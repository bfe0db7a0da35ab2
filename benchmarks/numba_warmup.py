"""Numba compilation of PyOD's HBOS: what a new process pays on its first HBOS fit + score.

    python benchmarks/numba_warmup.py [--repeats 3]

Each figure is a fresh Python process (as a new worker child is), timing its first
``HBOS().fit(x).decision_function(x)`` on 36 x 12 features after the imports:

* plain PyOD: numba compiles ``_calculate_outlier_scores`` in every process (PyOD's ``@njit`` has
  no ``cache=True``);
* cache, cold: ``modelcache.numba_cache.enable(dir)`` on an empty dir: compiles once and writes
  the machine code (the first process on a machine);
* cache, warm: a later process with the same dir: loads the machine code.

Target (issue 16, item 5): compilation is not paid on every process start: the warm first fit +
score costs at most a tenth of plain PyOD's (a ratio, so that it holds on a loaded machine; on an
idle core plain PyOD's is about 3.6 s). The load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
TARGET_WARM_SHARE = 0.10  # of plain PyOD's first fit + score

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
cache_dir = sys.argv[2]
if cache_dir:
    from modelcache import numba_cache
    numba_cache.enable(cache_dir)
import numpy as np
from pyod.models.hbos import HBOS
x = np.random.default_rng(0).normal(size=(36, 12))
started = time.perf_counter()
HBOS().fit(x).decision_function(x)
first = time.perf_counter() - started
started = time.perf_counter()
HBOS().fit(x).decision_function(x)
print(json.dumps({"first": first, "second": time.perf_counter() - started}))
"""


def first_fit(cache_dir: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(BASE_DIR), cache_dir], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="processes per case (the median is shown)")
    args = parser.parse_args()
    print(f"numba warm-up: a new process's first HBOS fit + score (36 x 12), median of {args.repeats}; {load()}")
    plain = [first_fit("")["first"] for _ in range(args.repeats)]
    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="numba-bench-") as cache_dir:
            cold.append(first_fit(cache_dir)["first"])
            warm.append(first_fit(cache_dir)["first"])
    for name, values in (("plain PyOD (compiles)", plain), ("cache, cold (compiles, writes)", cold)):
        print(f"  {name:34} {statistics.median(values):7.3f} s")
    share = statistics.median(warm) / statistics.median(plain)
    verdict = "ok" if share <= TARGET_WARM_SHARE else "ABOVE TARGET"
    print(
        f"  {'cache, warm (loads)':34} {statistics.median(warm):7.3f} s   = {share:.1%} of plain PyOD's, "
        f"target <= {TARGET_WARM_SHARE:.0%} (compilation not paid per process)  {verdict}"
    )
    print(f"  saved per new process: {statistics.median(plain) - statistics.median(warm):.3f} s; {load()}")


if __name__ == "__main__":
    main()
