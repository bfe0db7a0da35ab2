"""The Celery app. Workers run ``celery -A reims worker -Q anomaly,default``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")

app = Celery("reims")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
