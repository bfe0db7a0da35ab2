"""The Celery app. Workers run ``celery -A reims worker -Q anomaly,default``."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init

from modelcache.numba_cache import warm_on_worker_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")

app = Celery("reims")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The worker's main process loads PyOD's compiled HBOS (numba's on-disk cache) once, before its pool
# forks: every child, and every replacement of a child that died, inherits it and starts at once.
# Not in each child (worker_process_init): that runs before the child reports UP, and on a loaded
# machine the warm-up (~7 s) outlasted CELERY_WORKER_PROC_ALIVE_TIMEOUT, so the main process
# SIGKILLed each new child and forked another, for ever, and no task ran again.
worker_init.connect(warm_on_worker_start)
