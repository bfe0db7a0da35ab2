"""REIMS Anomaly project package: loads the Celery app with Django."""

from reims.celery import app as celery_app

__all__ = ("celery_app",)
