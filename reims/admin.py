"""Admin pages of third-party apps that only superusers see.

Celery's task results, beat's periodic tasks and schedules, and API tokens are operations pages:
an analyst or a manager (staff, with model permissions from their group) must not list other
users' tokens or edit schedules. Each third-party ModelAdmin is kept as its app wrote it and
re-registered with ``SuperuserOnlyAdmin`` (the one the portfolio admin uses) in front, which answers
"no" to every permission of a non-superuser, so the pages vanish from the index and their URLs
answer 403.
"""

from __future__ import annotations

from django.contrib import admin
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from django_celery_results.models import ChordCounter, GroupResult, TaskResult
from rest_framework.authtoken.models import Token, TokenProxy

from documents.admin import SuperuserOnlyAdmin

SUPERUSER_ONLY = (
    TaskResult,
    GroupResult,
    ChordCounter,
    PeriodicTask,
    IntervalSchedule,
    CrontabSchedule,
    SolarSchedule,
    ClockedSchedule,
    Token,
    TokenProxy,
)


def restrict_to_superusers(site: admin.AdminSite, models=SUPERUSER_ONLY) -> None:
    for model in models:
        if not site.is_registered(model):
            continue
        model_admin = type(site.get_model_admin(model))
        site.unregister(model)
        site.register(model, type(f"SuperuserOnly{model_admin.__name__}", (SuperuserOnlyAdmin, model_admin), {}))


restrict_to_superusers(admin.site)
