"""Data migration: the analysts and managers groups with their permissions."""
from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_roles(apps, schema_editor):
    from reims.roles import roles_sync

    # Permissions are normally created after migrate; make sure they exist before we assign them.
    for label in ("documents", "anomalies", "modelcache", "batch_jobs"):
        create_permissions(global_apps.get_app_config(label), verbosity=0)
    roles_sync(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def remove_roles(apps, schema_editor):
    from reims.roles import ANALYSTS, MANAGERS

    apps.get_model("auth", "Group").objects.filter(name__in=[ANALYSTS, MANAGERS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("documents", "0001_initial"),
        ("anomalies", "0001_initial"),
        ("modelcache", "0001_initial"),
        ("batch_jobs", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
