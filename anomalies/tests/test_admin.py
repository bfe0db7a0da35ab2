"""The admin pages of the anomalies app, and the verdict actions."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from anomalies import services
from anomalies.models import AnomalyDetection, AnomalyFeedback
from batch_jobs.models import BatchReprocessingJob, JobStatus
from documents.models import PDFFieldCoordinate, Property

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/anomalies/anomalydetection/"


@pytest.fixture
def detected(ledger, statistical_only):
    services.detection_run(all_documents=True)
    return AnomalyDetection.objects.get(is_anomaly=True)


def test_changelist_shows_flagged_lines_by_default(admin_client, detected):
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert admin_client.get(CHANGELIST, {"flagged": "all"}).context["cl"].result_count == 72
    assert admin_client.get(CHANGELIST, {"flagged": "no", "q": "6010"}).context["cl"].result_count == 23
    assert admin_client.get(CHANGELIST, {"severity": detected.severity}).status_code == 200


def test_detail_page_shows_the_sentence_explanation_and_readable_contributions(admin_client, detected):
    response = admin_client.get(f"{CHANGELIST}{detected.id}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "likely a decimal shift" in html
    assert "<pre" in html and "features" in html  # contributions as readable JSON
    assert "Suggested actions" in html


def test_verdict_actions_call_the_feedback_service(admin_client, admin_user, detected):
    response = admin_client.post(CHANGELIST, {"action": "dismiss_selected", "_selected_action": [detected.id]}, follow=True)
    assert response.status_code == 200
    feedback = AnomalyFeedback.objects.get()
    assert feedback.feedback_type == "dismissed" and feedback.user == admin_user
    detected.refresh_from_db()
    assert detected.status == "dismissed"


def test_users_without_the_permission_get_no_verdict_actions(client, viewer, detected):
    from django.contrib.auth.models import Permission

    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_anomalydetection"))
    client.force_login(viewer)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "dismiss_selected" not in response.content.decode()
    client.post(CHANGELIST, {"action": "dismiss_selected", "_selected_action": [detected.id]})
    assert not AnomalyFeedback.objects.exists()


@pytest.mark.parametrize("page", ["anomalyexplanation", "anomalyfeedback", "modelselectionlog", "crosspropertybenchmark"])
def test_other_pages_are_read_only_lists(admin_client, detected, page):
    response = admin_client.get(f"/admin/anomalies/{page}/")
    assert response.status_code == 200
    assert admin_client.get(f"/admin/anomalies/{page}/add/").status_code == 403


# --- The review page -------------------------------------------------------------------------------


def _review(client, detection, filters: str = ""):
    query = {"_changelist_filters": filters} if filters else {}
    response = client.get(f"{CHANGELIST}{detection.id}/change/", query)
    assert response.status_code == 200
    return response


def _feedback(client, detection, feedback_type: str, filters: str = "", **extra):
    return client.post(
        f"{CHANGELIST}{detection.id}/feedback/",
        {"feedback_type": feedback_type, "_changelist_filters": filters, **extra},
    )


def _staff_viewer(viewer):
    viewer.is_staff = True
    viewer.save()
    viewer.user_permissions.add(Permission.objects.get(codename="view_anomalydetection"))
    return viewer


def test_review_page_shows_chart_explanation_source_and_verdict_buttons(admin_client, detected):
    review = _review(admin_client, detected).context["review"]
    html = _review(admin_client, detected).content.decode()

    # The series: 24 months, the flagged one ringed, the expected line and its band.
    assert [p.label for p in review["chart"].points][:2] == ["2022-01", "2022-02"]
    assert len(review["chart"].points) == 24
    assert html.count('class="anomaly-point"') == 1
    assert 'class="expected"' in html and 'class="expected-band"' in html
    assert "Shaded band: expected value ± 5.0 robust scales" in html
    # The explanation, root cause, factors and actions.
    assert review["sentence"] == detected.explanation_text and "likely a decimal shift" in html
    assert "Why: Decimal shift" in html
    assert review["factors"] and all(f["percent"] is not None for f in review["factors"])
    assert len(review["suggested_actions"]) >= 1
    # The document it came from; no PDF here.
    assert f"/admin/documents/documentupload/{detected.document_id}/change/" in html
    assert "Not read from a PDF" in html
    # The verdict form posts to the feedback view with a CSRF token and the four verdicts.
    assert f'action="{CHANGELIST}{detected.id}/feedback/"' in html
    assert "csrfmiddlewaretoken" in html
    assert [v["value"] for v in review["verdicts"]] == ["confirmed", "dismissed", "false_positive", "new_normal"]
    assert 'src="/static/console/review.js"' in html


def test_review_page_shows_pdf_coordinates_of_the_line(admin_client, detected):
    PDFFieldCoordinate.objects.create(
        document_id=detected.document_id,
        table_name="line_items",
        record_id=detected.line_item_id,
        field_name="account_name",
        page_number=3,
        x0=40.0,
        y0=300.0,
        x1=160.0,
        y1=312.0,
        matched_text="Repairs",
    )
    PDFFieldCoordinate.objects.create(
        document_id=detected.document_id,
        table_name="line_items",
        record_id=detected.line_item_id,
        field_name="amount",
        page_number=3,
        x0=402.5,
        y0=300.0,
        x1=471.2,
        y1=312.0,
        matched_text="30,840.70",
        confidence=0.97,
    )
    html = _review(admin_client, detected).content.decode()
    boxes = html[html.index('id="pdf-coordinates"') :]
    assert boxes.index("<strong>amount</strong>") < boxes.index("<strong>account_name</strong>")  # the amount first
    assert "page 3, box (402.5, 300.0, 471.2, 312.0)" in boxes
    assert "<code>30,840.70</code>" in boxes and "confidence 0.97" in boxes


def test_a_verdict_button_records_feedback_and_opens_the_next_anomaly_of_the_queue(admin_client, admin_user, detected):
    filters = "flagged=all&q=6010"  # the queue: every scored repairs line, highest score first
    queue = list(AnomalyDetection.objects.filter(account_code="6010-0000").order_by("-anomaly_score", "-detected_at", "-pk"))
    assert queue[0] == detected
    review = _review(admin_client, detected, filters).context["review"]
    assert (review["queue"].position, review["queue"].total, review["queue"].previous_id) == (1, 24, None)
    assert review["next_url"] == f"{CHANGELIST}{queue[1].id}/change/?_changelist_filters=flagged%3Dall%26q%3D6010"

    response = _feedback(admin_client, detected, "confirmed", filters, notes="vendor keyed x10")

    assert response.status_code == 302 and response.url == review["next_url"]
    feedback = AnomalyFeedback.objects.get()
    assert (feedback.anomaly_id, feedback.user, feedback.feedback_type, feedback.notes) == (
        detected.id,
        admin_user,
        "confirmed",
        "vendor keyed x10",
    )
    detected.refresh_from_db()
    assert detected.status == "confirmed" and detected.is_anomaly
    # The next page says what was done, with a way back.
    page = admin_client.get(response.url)
    assert "6010-0000 2023-06 (A1)</a> marked confirmed" in page.content.decode()
    assert page.context["review"]["queue"].position == 2


def test_notes_over_the_services_limit_are_refused_with_a_message(admin_client, detected):
    too_long = "x" * (services.FEEDBACK_NOTES_MAX_LENGTH + 1)
    response = _feedback(admin_client, detected, "confirmed", notes=too_long)
    assert response.status_code == 302
    page = admin_client.get(response.url).content.decode()
    assert f"at most {services.FEEDBACK_NOTES_MAX_LENGTH} characters" in page
    assert not AnomalyFeedback.objects.exists()


def test_feedback_twice_through_the_page_updates_one_row(admin_client, detected):
    _feedback(admin_client, detected, "confirmed")
    review = _review(admin_client, detected).context["review"]
    assert review["own_feedback"].feedback_type == "confirmed"
    _feedback(admin_client, detected, "false_positive", notes="the invoice really was 30k")

    feedback = AnomalyFeedback.objects.get()
    assert (feedback.feedback_type, feedback.notes) == ("false_positive", "the invoice really was 30k")
    detected.refresh_from_db()
    assert (detected.status, detected.is_anomaly) == ("false_positive", False)
    html = _review(admin_client, detected).content.decode()
    assert "Your verdict: <strong>False positive</strong>" in html


def test_the_last_anomaly_of_the_queue_returns_to_the_list(admin_client, detected):
    response = _feedback(admin_client, detected, "dismissed", "severity__exact=" + detected.severity)
    assert response.status_code == 302
    assert response.url == f"{CHANGELIST}?severity__exact={detected.severity}"
    page = admin_client.get(response.url)
    assert "That was the last anomaly of the queue." in page.content.decode()


def test_an_unknown_verdict_is_refused_with_a_message(admin_client, detected):
    response = _feedback(admin_client, detected, "maybe")
    assert response.status_code == 302 and response.url == f"{CHANGELIST}{detected.id}/change/"
    assert not AnomalyFeedback.objects.exists()
    message = admin_client.get(response.url).content.decode()
    assert "Invalid feedback (feedback_type: must be one of confirmed, dismissed" in message


def test_feedback_view_takes_posts_only(admin_client, detected):
    assert admin_client.get(f"{CHANGELIST}{detected.id}/feedback/").status_code == 405


def test_a_user_without_the_permission_sees_no_buttons_and_a_forged_post_is_403(client, viewer, detected):
    client.force_login(_staff_viewer(viewer))
    response = _review(client, detected)
    html = response.content.decode()
    assert 'id="verdict-form"' not in html and "verdict-confirmed" not in html
    assert response.context["review"]["can_review"] is False
    assert "likely a decimal shift" in html  # they still read the review

    forged = _feedback(client, detected, "dismissed")
    assert forged.status_code == 403
    assert not AnomalyFeedback.objects.exists()
    detected.refresh_from_db()
    assert detected.status == "open"


def test_the_feedback_view_checks_the_csrf_token(admin_user, detected):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert _feedback(client, detected, "confirmed").status_code == 403
    assert not AnomalyFeedback.objects.exists()


def test_invalid_queue_filters_fall_back_to_the_default_queue(admin_client, detected):
    review = _review(admin_client, detected, "no_such_field=1").context["review"]
    assert (review["queue"].position, review["queue"].total) == (1, 1)


def test_an_unflagged_line_offers_only_the_missed_anomaly_verdict(admin_client, detected):
    quiet = AnomalyDetection.objects.filter(is_anomaly=False, account_code="5010-0000").first()
    review = _review(admin_client, quiet, "flagged=all").context["review"]
    assert [v["value"] for v in review["verdicts"]] == ["false_negative"]
    assert review["queue"].position is not None  # it is in the queue of all scored lines
    assert _review(admin_client, quiet).context["review"]["queue"].position is None  # not in the flagged one
    _feedback(admin_client, quiet, "false_negative")
    quiet.refresh_from_db()
    assert quiet.is_anomaly and quiet.status == "confirmed"


# --- The property heatmap and the job page ---------------------------------------------------------


def test_property_page_shows_the_heatmap_with_links_to_the_anomalies(admin_client, detected):
    html = admin_client.get(f"/admin/documents/property/{detected.property_id}/change/").content.decode()
    assert 'id="property-heatmap"' in html and 'class="heatmap"' in html
    link = f"{CHANGELIST}{detected.id}/change/?_changelist_filters=property__id__exact%3D{detected.property_id}"
    assert f'href="{link}"' in html
    assert "IS 6010-0000" in html and "2023-06: score" in html

    # The link's queue is the property's flagged anomalies.
    review = admin_client.get(link).context["review"]
    assert (review["queue"].position, review["queue"].total) == (1, 1)


def test_property_without_anomalies_says_so(admin_client, db):
    quiet = Property.objects.create(code="Q1", name="Quiet")
    html = admin_client.get(f"/admin/documents/property/{quiet.pk}/change/").content.decode()
    assert "No flagged anomalies on this property" in html and 'class="heatmap"' not in html


@pytest.mark.parametrize(("status", "polling"), [(JobStatus.RUNNING, "true"), (JobStatus.COMPLETED, "false")])
def test_job_page_polls_the_job_api_while_the_job_runs(admin_client, db, status, polling):
    job = BatchReprocessingJob.objects.create(job_name="j", status=status, total_documents=8, processed_documents=2)
    html = admin_client.get(f"/admin/batch_jobs/batchreprocessingjob/{job.pk}/change/").content.decode()
    assert f'data-url="/api/v1/batch-reprocessing/jobs/{job.pk}"' in html
    assert f'data-polling="{polling}"' in html
    assert 'src="/static/console/job_progress.js"' in html
    assert '<span id="job-pct">25.0</span>' in html
    # What the script reads, with the page's own session.
    api = admin_client.get(f"/api/v1/batch-reprocessing/jobs/{job.pk}").json()
    assert (api["status"], api["progress_pct"], api["processed_documents"]) == (status, 25.0, 2)


def test_changelist_filters_of_a_review_link_are_kept_in_the_breadcrumb(admin_client, detected):
    html = _review(admin_client, detected, "severity__exact=critical").content.decode()
    href = html[html.index(">Review queue<") - 200 : html.index(">Review queue<")]
    query = parse_qs(urlsplit(href.split('href="')[-1].rstrip('"')).query)
    assert query == {"severity__exact": ["critical"]}


def test_the_list_offers_to_review_its_queue_from_its_first_row(admin_client, detected):
    response = admin_client.get(CHANGELIST, {"severity__exact": detected.severity, "p": "1"})
    assert response.context["review_start_url"] == (
        f"{CHANGELIST}{detected.id}/change/?_changelist_filters=severity__exact%3D{detected.severity}"
    )
    html = response.content.decode()
    assert 'id="start-review"' in html and f"{detected.field_value:,.2f}" in html
    assert "review_start_url" not in admin_client.get(CHANGELIST, {"q": "no-such-account"}).context
