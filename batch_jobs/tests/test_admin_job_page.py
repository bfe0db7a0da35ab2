"""The job page (issue 19, item 6): chunks as a paginated list with a status filter, and the results
summary as tables instead of raw JSON."""

from __future__ import annotations

import re

import pytest

from batch_jobs.models import BatchJobChunk, ChunkStatus, JobStatus
from batch_jobs.tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def big_job():
    job = factories.job(
        job_name="216 chunks",
        status=JobStatus.COMPLETED,
        total_documents=2160,
        processed_documents=2160,
        successful_documents=2150,
        failed_documents=10,
        results_summary={
            "documents": {"total": 2160, "processed": 2160, "successful": 2150, "failed": 10, "skipped": 0},
            "anomalies": {"total": 42, "by_severity": {"critical": 5, "high": 37}, "by_property": {"P001": 30, "P002": 12}},
            "failures": [{"document_id": 7, "document": "P001 income statement 2024-03", "reason": "boom"}],
            "failures_total": 10,
            "skipped_by_reason": {},
            "chunks": {"done": 213, "failed": 3},
        },
    )
    BatchJobChunk.objects.bulk_create(
        BatchJobChunk(job=job, index=i, status=ChunkStatus.FAILED if i in (5, 99, 200) else ChunkStatus.DONE)
        for i in range(216)
    )
    return job


def _rows(html: str) -> list[str]:
    table = html.split('id="job-chunks"')[1].split("</table>")[0]
    return re.findall(r'<tr class="chunk-(\w+)">', table)


def test_chunks_are_paginated_and_filtered_by_status(admin_client, big_job):
    url = f"/admin/batch_jobs/batchreprocessingjob/{big_job.pk}/change/"
    html = admin_client.get(url).content.decode()
    assert len(_rows(html)) == 50 and "page 1 of 5 (216 chunks)" in html
    assert "Failed (3)" in html and "All (216)" in html
    failed = admin_client.get(url, {"chunk_status": "failed"}).content.decode()
    assert _rows(failed) == ["failed"] * 3 and "chunk_page" not in failed.split('id="job-chunks"')[1]
    last = admin_client.get(url, {"chunk_page": "5"}).content.decode()
    assert len(_rows(last)) == 16


def test_results_summary_is_a_readable_table(admin_client, big_job):
    html = admin_client.get(f"/admin/batch_jobs/batchreprocessingjob/{big_job.pk}/change/").content.decode()
    results = html.split('id="job-results"')[1]
    assert "<caption>Anomalies: 42</caption>" in results
    assert '<th>Critical</th><td class="num">5</td>' in results and '<th>P001</th><td class="num">30</td>' in results
    assert "P001 income statement 2024-03</td><td>boom" in results
    assert "&quot;by_severity&quot;" not in html and '"by_severity"' not in html
