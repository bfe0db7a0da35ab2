"""The Celery app. Workers run ``celery -A reims worker -Q anomaly,default``."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init

from modelcache.numba_cache import warm_on_worker_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")

app = Celery("reims")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Each new worker child loads PyOD's compiled HBOS from numba's on-disk cache before its first task.
worker_process_init.connect(warm_on_worker_start)
