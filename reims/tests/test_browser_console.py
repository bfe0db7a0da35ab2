"""The analyst console in a real headless Chromium: review anomalies, the property heatmap, job progress.

Each test logs in through the login form, works the pages as an analyst would (mouse and keyboard)
and saves a screenshot of each page under var/test-artifacts/screenshots/.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from anomalies import services
from anomalies.models import AnomalyDetection, AnomalyFeedback
from anomalies.tests.conftest import ledger_amounts
from anomalies.tests.factories import load_rows, series_rows
from batch_jobs.models import BatchReprocessingJob, JobStatus
from documents.models import PDFFieldCoordinate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "s3cret-pass-123"
WAIT_SECONDS = 10


@pytest.fixture
def portfolio(monkeypatch) -> dict[str, AnomalyDetection]:
    """One office property over 24 months with three injected errors, detected; one line from a PDF."""
    monkeypatch.setenv("MODEL_CACHE_ENABLED", "false")
    amounts = ledger_amounts()  # repairs x10 in 2023-06
    amounts["5010-0000"][20] = -amounts["5010-0000"][20]  # electricity sign flip in 2023-09
    amounts["4010-0000"][8] = amounts["4010-0000"][8] * 2  # rent posted twice in 2022-09
    load_rows(series_rows(property_code="A1", amounts=amounts, start="2022-01"))
    summary = services.detection_run(all_documents=True)
    assert summary.documents_failed == 0, summary.failures
    flagged = {d.account_code: d for d in AnomalyDetection.objects.filter(is_anomaly=True)}
    assert {"4010-0000", "5010-0000", "6010-0000"} <= set(flagged), flagged
    repairs = flagged["6010-0000"]
    PDFFieldCoordinate.objects.create(
        document_id=repairs.document_id,
        table_name="line_items",
        record_id=repairs.line_item_id,
        field_name="amount",
        page_number=2,
        x0=402.5,
        y0=311.0,
        x1=471.2,
        y1=322.4,
        matched_text=f"{repairs.field_value:,.2f}",
        confidence=0.97,
    )
    return flagged


@pytest.fixture
def analyst(django_user_model):
    return django_user_model.objects.create_superuser("analyst", "a@example.com", PASSWORD)


def _wait(driver):
    return WebDriverWait(driver, WAIT_SECONDS)


def _log_in(driver, live_server, next_path: str = "/admin/") -> None:
    driver.get(f"{live_server.url}/admin/login/?next={next_path}")
    driver.find_element(By.NAME, "username").send_keys("analyst")
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    _wait(driver).until(EC.presence_of_element_located((By.ID, "user-tools")))


def _press(driver, key: str) -> None:
    driver.find_element(By.TAG_NAME, "body").send_keys(key)


def _review_id(driver) -> int:
    """The id of the anomaly the review page shows (from its URL)."""
    return int(driver.current_url.split("/anomalydetection/")[1].split("/")[0])


def test_review_an_anomaly_from_the_dashboard_with_buttons_and_shortcuts(
    browser, live_server, analyst, portfolio, screenshot
):
    _log_in(browser, live_server)
    assert "Open anomalies by severity" in browser.find_element(By.ID, "dashboard").text
    screenshot(browser, "dashboard")

    # The dashboard's critical count opens the queue of open critical anomalies.
    browser.find_element(By.CSS_SELECTOR, "#dash-severity a.sev-critical").click()
    rows = _wait(browser).until(EC.presence_of_all_elements_located((By.CSS_SELECTOR, "#result_list tbody tr")))
    queue_size = len(rows)
    assert queue_size >= 2
    assert "30,840.70" in browser.find_element(By.ID, "result_list").text  # amounts readable
    screenshot(browser, "queue")
    browser.find_element(By.ID, "start-review").click()

    review = _wait(browser).until(EC.visibility_of_element_located((By.ID, "review")))
    first = _review_id(browser)
    assert browser.find_element(By.ID, "queue-position").text == f"1 of {queue_size} in the queue"
    chart = browser.find_element(By.CSS_SELECTOR, "#series-chart svg")
    assert chart.find_elements(By.CSS_SELECTOR, "circle.anomaly-point")
    assert chart.find_elements(By.CSS_SELECTOR, "path.expected")
    assert "Shaded band" in browser.find_element(By.ID, "band-note").text
    assert browser.find_element(By.ID, "review-sentence").text
    assert browser.find_element(By.ID, "review-actions").find_elements(By.TAG_NAME, "li")
    screenshot(browser, "review")

    # ? opens the help overlay, Esc closes it.
    _press(browser, "?")
    help_overlay = _wait(browser).until(EC.visibility_of_element_located((By.ID, "shortcut-help")))
    assert "next anomaly" in help_overlay.text
    screenshot(browser, "shortcut-help")
    _press(browser, Keys.ESCAPE)
    _wait(browser).until(EC.invisibility_of_element_located((By.ID, "shortcut-help")))

    # c confirms and moves on to the next anomaly of the queue.
    _press(browser, "c")
    _wait(browser).until(EC.staleness_of(review))
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "review")))
    assert _review_id(browser) != first
    assert "marked confirmed" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    assert f"/{first}/change/" in browser.find_element(By.ID, "reviewed-link").get_attribute("href")
    feedback = AnomalyFeedback.objects.get()
    assert (feedback.anomaly_id, feedback.feedback_type, feedback.user_id) == (first, "confirmed", analyst.id)
    assert AnomalyDetection.objects.get(id=first).status == "confirmed"
    screenshot(browser, "after-confirm")

    # j and k walk the queue (the confirmed anomaly has left the queue of open ones).
    second = _review_id(browser)
    assert browser.find_element(By.ID, "queue-position").text == f"1 of {queue_size - 1} in the queue"
    review = browser.find_element(By.ID, "review")
    _press(browser, "j")
    _wait(browser).until(EC.staleness_of(review))
    review = _wait(browser).until(EC.visibility_of_element_located((By.ID, "review")))
    assert browser.find_element(By.ID, "queue-position").text == f"2 of {queue_size - 1} in the queue"
    _press(browser, "k")
    _wait(browser).until(EC.staleness_of(review))
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "review")))
    assert _review_id(browser) == second

    # Back to the confirmed one from the message: a second verdict, with the button, updates the row.
    browser.get(f"{live_server.url}/admin/anomalies/anomalydetection/{first}/change/")
    _wait(browser).until(EC.visibility_of_element_located((By.ID, "own-feedback")))
    assert "Confirmed" in browser.find_element(By.ID, "own-feedback").text
    browser.find_element(By.NAME, "notes").send_keys("known invoice, posted twice by the vendor")
    browser.find_element(By.ID, "verdict-dismissed").click()
    _wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "ul.messagelist")))
    feedback = AnomalyFeedback.objects.get()
    assert (feedback.feedback_type, feedback.notes) == ("dismissed", "known invoice, posted twice by the vendor")


def test_review_page_shows_the_pdf_source_and_the_property_heatmap_links_to_it(
    browser, live_server, analyst, portfolio, screenshot
):
    repairs = portfolio["6010-0000"]
    _log_in(browser, live_server, next_path=f"/admin/documents/property/{repairs.property_id}/change/")
    heatmap = _wait(browser).until(EC.visibility_of_element_located((By.ID, "property-heatmap")))
    cells = heatmap.find_elements(By.CSS_SELECTOR, "svg.heatmap a")
    assert len(cells) == AnomalyDetection.objects.filter(property_id=repairs.property_id, is_anomaly=True).count()
    browser.execute_script("arguments[0].scrollIntoView()", heatmap)
    screenshot(browser, "property-heatmap")

    target = next(a for a in cells if f"/{repairs.id}/change/" in a.get_dom_attribute("href"))
    browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))", target)
    coordinates = _wait(browser).until(EC.visibility_of_element_located((By.ID, "pdf-coordinates")))
    assert _review_id(browser) == repairs.id
    assert "402.5, 311.0, 471.2, 322.4" in coordinates.text
    assert f"{repairs.field_value:,.2f}" in coordinates.text
    # The heatmap's link keeps the property's anomalies as the review queue.
    assert browser.find_element(By.ID, "queue-position").text.endswith(f"of {len(cells)} in the queue")
    screenshot(browser, "review-pdf-source")


def test_job_page_follows_progress_without_a_reload(browser, live_server, analyst, screenshot):
    job = BatchReprocessingJob.objects.create(
        job_name="nightly reprocess", status=JobStatus.RUNNING, total_documents=40, initiated_by=analyst
    )
    _log_in(browser, live_server, next_path=f"/admin/batch_jobs/batchreprocessingjob/{job.pk}/change/")
    panel = _wait(browser).until(EC.visibility_of_element_located((By.ID, "job-live")))
    assert browser.find_element(By.ID, "job-pct").text == "0.0"
    browser.execute_script("window.__sameDocument = true;")  # lost if the page reloads

    BatchReprocessingJob.objects.filter(pk=job.pk).update(processed_documents=10, successful_documents=9, failed_documents=1)
    _wait(browser).until(EC.text_to_be_present_in_element((By.ID, "job-pct"), "25.0"))
    assert browser.find_element(By.ID, "job-failed").text == "1"
    width = browser.find_element(By.CSS_SELECTOR, "#job-bar > span").value_of_css_property("width")
    screenshot(browser, "job-running")

    BatchReprocessingJob.objects.filter(pk=job.pk).update(
        status=JobStatus.COMPLETED, processed_documents=40, successful_documents=39
    )
    _wait(browser).until(EC.text_to_be_present_in_element((By.ID, "job-status"), "Completed"))
    _wait(browser).until(lambda d: panel.get_attribute("data-polling") == "false")
    assert browser.find_element(By.ID, "job-pct").text == "100.0"
    assert browser.find_element(By.ID, "job-processed").text == "40"
    assert browser.find_element(By.CSS_SELECTOR, "#job-bar > span").value_of_css_property("width") != width
    assert browser.execute_script("return window.__sameDocument === true;")
    # The admin's own read-only fields follow too.
    assert browser.find_element(By.CSS_SELECTOR, ".field-status .readonly").text == "Completed"
    assert browser.find_element(By.CSS_SELECTOR, "#content > h2").text.endswith("(completed)")
    screenshot(browser, "job-completed")
