"""Numba's compilation of PyOD's HBOS, paid once per machine instead of once per process.

PyOD 3.6.7 compiles ``pyod.models.hbos._calculate_outlier_scores`` with a plain ``@njit``: no
``cache=True``, so every new process spends seconds compiling it on its first HBOS fit (3.6 s on
an idle core), and numba's ``NUMBA_CACHE_DIR`` alone changes nothing.  :func:`enable` recompiles
that same Python function with ``cache=True`` and points numba's cache at ``cache_dir``: the
first process compiles and writes the machine code there, every later process loads it.
:func:`warm` runs one tiny HBOS fit and score so that a worker pays the load (or, on a fresh
machine, the compilation) once in its main process before the pool forks, not inside a child's
first task.

No Django import: ``modelcache.apps`` calls :func:`enable` with ``settings.NUMBA_CACHE_DIR``,
the worker's ``worker_init`` calls :func:`warm`, benchmarks/numba_warmup.py both.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

# PyOD's numba functions that HBOS, the detector our selection picks most, runs: module -> names.
JITTED: dict[str, tuple[str, ...]] = {"pyod.models.hbos": ("_calculate_outlier_scores",)}

_lock = threading.Lock()
_enabled_dir: str | None = None


def _recompile_cached(module: ModuleType) -> None:
    from numba import njit

    for name in JITTED[module.__name__]:
        dispatcher = getattr(module, name)
        # The module calls the function by its global name: replacing it is enough.
        setattr(module, name, njit(cache=True)(dispatcher.py_func))


class _RecompileOnImport(importlib.abc.MetaPathFinder):
    """Recompiles a JITTED module's functions right after the module is first imported, so that
    a process that never runs PyOD (the web server) never imports it for this."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname not in JITTED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original(module)
            _recompile_cached(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def enable(cache_dir: Path | str) -> None:
    """Cache PyOD's compiled HBOS functions in ``cache_dir`` (idempotent, thread-safe, cheap:
    nothing is imported until PyOD is)."""
    global _enabled_dir
    path = str(cache_dir)
    with _lock:
        if _enabled_dir is not None:
            return
        Path(path).mkdir(parents=True, exist_ok=True)
        # numba reads NUMBA_CACHE_DIR when it is first imported; a numba already imported is told directly.
        os.environ["NUMBA_CACHE_DIR"] = path
        if "numba" in sys.modules:
            from numba.core import config

            config.CACHE_DIR = path  # type: ignore[attr-defined]  # numba's config sets its names at run time
        for module_name in JITTED:
            if module_name in sys.modules:
                _recompile_cached(sys.modules[module_name])
        sys.meta_path.insert(0, _RecompileOnImport())
        _enabled_dir = path


def warm() -> None:
    """One tiny HBOS fit and score: loads (or compiles and caches) the machine code now."""
    import numpy as np
    from pyod.models.hbos import HBOS

    x = np.random.default_rng(0).normal(size=(36, 12))
    HBOS().fit(x).decision_function(x)


def warm_on_worker_start(**_signal: object) -> None:
    """``worker_init`` receiver (reims/celery.py): warm the worker's main process, which its pool
    children inherit when they are forked."""
    warm()
