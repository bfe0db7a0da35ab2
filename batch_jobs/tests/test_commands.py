"""``manage.py reprocess``: bad input exits non-zero with one line; a job is created and queued."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from batch_jobs.models import BatchReprocessingJob, JobStatus
from batch_jobs.tests import factories


@pytest.mark.django_db
def test_reprocess_creates_and_queues_a_job_with_the_filters():
    docs = factories.portfolio(properties=2, months=4, types=("income_statement", "balance_sheet"))
    code = docs[0].property.code
    out = StringIO()
    call_command(
        "reprocess",
        "--property",
        code,
        "--since",
        "2024-02",
        "--until",
        "2024-03",
        "--document-type",
        "balance_sheet",
        "--name",
        "q1 fix",
        stdout=out,
    )
    job = BatchReprocessingJob.objects.get()
    assert f"Job #{job.pk} 'q1 fix' queued over 2 documents." in out.getvalue()
    assert job.status == JobStatus.QUEUED and job.celery_task_id
    assert job.property_ids == [docs[0].property_id]
    assert job.document_types == ["balance_sheet"]
    assert (job.date_range_start.isoformat(), job.date_range_end.isoformat()) == ("2024-02-01", "2024-03-01")


@pytest.mark.django_db
def test_reprocess_inline_runs_the_job_here_and_reports_skipped_documents():
    docs = factories.portfolio(properties=1, months=6, lines=3)
    docs[2].line_items.all().delete()
    out = StringIO()
    call_command("reprocess", "--inline", "--name", "no worker", stdout=out)
    job = BatchReprocessingJob.objects.get()
    assert job.status == JobStatus.COMPLETED
    assert (job.processed_documents, job.skipped_documents) == (6, 1)
    text = out.getvalue()
    assert f"Job #{job.pk} completed" in text and "6/6 documents" in text
    assert "skipped 1 document(s): " in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2024-13"], "--since must be YYYY-MM"),
        (["--until", "March"], "--until must be YYYY-MM"),
        (["--property", "NOPE"], "unknown property code(s): NOPE"),
        (["--document-type", "tax_return"], "invalid choice: 'tax_return'"),
        (["--status-filter", "done"], "invalid choice: 'done'"),
        (["--since", "2024-05", "--until", "2024-01"], "date_range_end"),
    ],
)
def test_bad_input_exits_with_one_line(args, message):
    with pytest.raises(CommandError) as caught:
        call_command("reprocess", *args)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not BatchReprocessingJob.objects.exists()


@pytest.mark.django_db
def test_flag_off_exits_non_zero_naming_it(monkeypatch):
    monkeypatch.setenv("BATCH_REPROCESSING_ENABLED", "off")
    with pytest.raises(CommandError, match="BATCH_REPROCESSING_ENABLED"):
        call_command("reprocess")


@pytest.mark.django_db
def test_wait_reports_a_job_that_ends_failed(settings):
    # A job another process already ended (timed out) is followed to its end: summary, then exit 1.
    job = factories.job(status=JobStatus.FAILED, error_message="timed out: ...", total_documents=3)
    from batch_jobs.management.commands.reprocess import Command

    out = StringIO()
    command = Command(stdout=out)
    with pytest.raises(CommandError, match=f"job #{job.pk} failed: timed out"):
        command._follow(job, poll=0.01, timeout=5)
    assert "0/3 documents" in out.getvalue()
