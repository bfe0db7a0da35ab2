from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from reims.roles import ANALYSTS, MANAGERS


@pytest.mark.django_db(transaction=True)
def test_data_migration_creates_groups_with_their_permissions():
    # Run the data migration itself: a flush by an earlier transactional test empties auth_group.
    call_command("migrate", "reims", "zero", verbosity=0)
    assert not Group.objects.filter(name__in=[ANALYSTS, MANAGERS]).exists()
    call_command("migrate", "reims", verbosity=0)

    analyst = User.objects.create_user("ana")
    analyst.groups.add(Group.objects.get(name=ANALYSTS))
    manager = User.objects.create_user("max")
    manager.groups.add(Group.objects.get(name=MANAGERS))

    assert analyst.has_perm("anomalies.view_anomalydetection")
    assert analyst.has_perm("anomalies.add_anomalyfeedback")
    assert not analyst.has_perm("batch_jobs.add_batchreprocessingjob")
    assert not analyst.has_perm("documents.add_documentupload")
    assert not analyst.has_perm("modelcache.change_anomalymodelcache")

    for perm in (
        "anomalies.add_anomalyfeedback",
        "batch_jobs.add_batchreprocessingjob",
        "batch_jobs.change_batchreprocessingjob",
        "documents.add_documentupload",
        "modelcache.change_anomalymodelcache",
    ):
        assert manager.has_perm(perm), perm
    assert not manager.has_perm("anomalies.delete_anomalydetection")
