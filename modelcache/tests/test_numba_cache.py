"""numba's compilation of PyOD's HBOS is cached on disk: a new process loads it, never recompiles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from celery.signals import worker_init
from django.conf import settings

from modelcache.numba_cache import warm_on_worker_start

BASE_DIR = Path(__file__).resolve().parents[2]
CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from modelcache import numba_cache
numba_cache.enable(sys.argv[2])
numba_cache.warm()
from pyod.models import hbos
stats = hbos._calculate_outlier_scores.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""


def new_process(cache_dir: Path) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(BASE_DIR), str(cache_dir)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_first_process_compiles_and_writes_the_cache_and_the_next_one_loads_it(tmp_path):
    first = new_process(tmp_path)
    assert first == {"hits": 0, "misses": 1}
    assert list(tmp_path.rglob("*.nbi")) and list(tmp_path.rglob("*.nbc"))
    second = new_process(tmp_path)
    assert second == {"hits": 1, "misses": 0}


def test_the_cache_lives_under_var_and_the_worker_warms_before_its_pool_forks():
    assert settings.NUMBA_CACHE_DIR == settings.VAR_DIR / "numba"
    assert warm_on_worker_start in [receiver() for _key, receiver in worker_init.receivers]
