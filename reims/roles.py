"""The two roles of the console and their Django permissions.

Analysts read everything and give feedback; managers also import documents, create and cancel
reprocessing jobs and invalidate cached models. The groups are created by a data migration
(reims/migrations/0001_roles.py) and kept in step by ``roles_sync``.
"""

from __future__ import annotations

READ_MODELS = (
    "documents.property",
    "documents.financialperiod",
    "documents.chartofaccount",
    "documents.documentupload",
    "documents.lineitem",
    "documents.pdffieldcoordinate",
    "anomalies.anomalydetection",
    "anomalies.anomalyexplanation",
    "anomalies.anomalyfeedback",
    "anomalies.crosspropertybenchmark",
    "anomalies.modelselectionlog",
    "modelcache.anomalymodelcache",
    "batch_jobs.batchreprocessingjob",
)

ANALYST_WRITES = ("anomalies.add_anomalyfeedback", "anomalies.change_anomalyfeedback")
MANAGER_WRITES = (
    "documents.add_documentupload",
    "batch_jobs.add_batchreprocessingjob",
    "batch_jobs.change_batchreprocessingjob",
    "modelcache.change_anomalymodelcache",
)

ANALYSTS = "analysts"
MANAGERS = "managers"


def role_permissions() -> dict[str, list[str]]:
    """Group name -> 'app_label.codename' permissions."""
    views = [f"{model.split('.')[0]}.view_{model.split('.')[1]}" for model in READ_MODELS]
    analysts = [*views, *ANALYST_WRITES]
    return {ANALYSTS: analysts, MANAGERS: [*analysts, *MANAGER_WRITES]}


def roles_sync(group_model, permission_model) -> None:
    """Create the groups and give them exactly their permissions (idempotent)."""
    for group_name, perms in role_permissions().items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            wanted.append(permission_model.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
