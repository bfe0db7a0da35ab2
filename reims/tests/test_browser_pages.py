"""Issue 19's pages in a real headless Chromium: the API docs load their scripts from our own
server, the anomaly list shows names and every column at 1,400 px with the side menu open, the
dashboard ranks by open anomalies, and an import with errors lists them all. Screenshots are saved
under var/test-artifacts/screenshots/ as for the other browser tests."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from anomalies import services
from anomalies.admin import AnomalyDetectionAdmin
from anomalies.models import AnomalyDetection, Severity
from anomalies.tests.conftest import ledger_amounts
from anomalies.tests.factories import load_rows, series_rows
from documents.models import DocumentUpload
from documents.tests.helpers import csv_bytes, statement_rows
from reims.tests.test_browser_console import _log_in, _wait, analyst  # noqa: F401 - analyst is a fixture
from reims.tests.test_console_pages import _flag

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("analyst")]

NAMES = {"4010-0000": "Base rent", "5010-0000": "Electricity", "6010-0000": "Repairs and maintenance"}
# Cells that must stay on one line (the account cell holds a name and, under it, the code).
ONE_LINE_COLUMNS = (
    "property_code",
    "period_label",
    "amount_display",
    "expected_display",
    "severity",
    "anomaly_type",
    "status",
)


def _assert_served_locally(driver, live_server, sidecar_folder: str) -> None:
    """Every resource the page loaded came from our server, the sidecar's bundle among them; a
    foreign one the page's scripts asked for (Redoc's Redocly logo) was blocked by the page's policy
    before any request left the browser."""
    loaded = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(f"/static/drf_spectacular_sidecar/{sidecar_folder}/" in url for url in loaded), loaded
    blocked = " ".join(
        entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]
    )
    foreign = [url for url in loaded if not url.startswith(live_server.url)]
    assert all(f"'{url}' violates" in blocked and "blocked" in blocked for url in foreign), (foreign, blocked)


def test_api_docs_load_every_script_from_our_own_server(browser, live_server, screenshot):
    _log_in(browser, live_server)
    browser.get(f"{live_server.url}/api/docs/")
    _wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .opblock")))
    assert "/api/v1/anomalies/" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui").text
    _assert_served_locally(browser, live_server, "swagger-ui-dist")
    screenshot(browser, "swagger")

    browser.get(f"{live_server.url}/api/redoc/")
    _wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, ".api-content")))
    assert "REIMS Anomaly API" in browser.find_element(By.TAG_NAME, "body").text
    _assert_served_locally(browser, live_server, "redoc")
    screenshot(browser, "redoc")

    browser.get(f"{live_server.url}/api/v1/")
    assert "/api/v1/batch-reprocessing/jobs/{pk}/cancel" in browser.find_element(By.TAG_NAME, "body").text
    screenshot(browser, "api-root")


def test_the_anomaly_list_shows_names_and_every_column_at_1400_px(browser, live_server, screenshot, monkeypatch):
    monkeypatch.setenv("MODEL_CACHE_ENABLED", "false")
    amounts = ledger_amounts()
    amounts["4010-0000"][8] *= 2
    rows = series_rows(property_code="A1", amounts=amounts, start="2022-01")
    for row in rows:
        row["account_name"] = NAMES[row["account_code"]]
    load_rows(rows)
    assert services.detection_run(all_documents=True).documents_failed == 0
    assert AnomalyDetection.objects.filter(is_anomaly=True).exists()

    browser.set_window_size(1400, 1000)
    _log_in(browser, live_server, "/admin/anomalies/anomalydetection/")
    table = _wait(browser).until(EC.presence_of_element_located((By.ID, "result_list")))
    assert browser.find_element(By.ID, "nav-sidebar").is_displayed()  # the side menu is open
    text = table.text
    assert "Repairs and maintenance" in text and "Income statement" in text and "income_statement" not in text
    layout = browser.execute_script(
        """
        const width = document.documentElement.clientWidth;
        const cells = [...document.querySelectorAll('#result_list th, #result_list td')];
        const lines = (cell) => { const r = document.createRange(); r.selectNodeContents(cell);
            return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; };
        return {
            width: width,
            scroll: document.documentElement.scrollWidth,
            results: [document.querySelector('#changelist .results').scrollWidth,
                      document.querySelector('#changelist .results').clientWidth],
            rightmost: Math.max(...cells.map(c => c.getBoundingClientRect().right)),
            wrapped: [...document.querySelectorAll(arguments[0])].filter(c => lines(c) > 1).map(c => c.innerText),
            // a word too long for its cell would overflow it (words are never broken: word-break normal)
            overflowing: cells.filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.innerText),
            breaks: [...new Set(cells.map(c => getComputedStyle(c).wordBreak + '/' + getComputedStyle(c).overflowWrap))],
        };
        """,
        ", ".join(f"#result_list td.field-{name}" for name in ONE_LINE_COLUMNS),
    )
    screenshot(browser, "anomaly-list-1400")
    assert layout["scroll"] <= layout["width"], layout  # no horizontal scrollbar on the page
    assert layout["results"][0] <= layout["results"][1], layout  # nor on the list's own box
    assert layout["rightmost"] <= layout["width"], layout
    assert layout["wrapped"] == [] and layout["overflowing"] == [], layout
    assert layout["breaks"] == ["normal/normal"], layout
    for column in AnomalyDetectionAdmin.list_display:
        header = browser.find_element(By.CSS_SELECTOR, f"#result_list th.column-{column}")
        assert header.is_displayed() and header.rect["x"] + header.rect["width"] <= layout["width"], column

    browser.find_element(By.ID, "start-review").click()
    _wait(browser).until(EC.presence_of_element_located((By.ID, "content")))
    screenshot(browser, "review-names")
    assert browser.find_elements(By.ID, "review"), browser.find_element(By.TAG_NAME, "body").text[:2000]
    assert browser.find_element(By.ID, "review-account").text in NAMES.values()
    breadcrumb = browser.find_element(By.CSS_SELECTOR, ".breadcrumbs").text
    assert any(name in breadcrumb for name in NAMES.values())
    assert "Direction" not in browser.find_element(By.ID, "content").text

    browser.get(f"{live_server.url}/admin/documents/property/{AnomalyDetection.objects.first().property_id}/change/")
    heatmap = _wait(browser).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#property-heatmap .heatmap-box svg")))
    assert any(name in heatmap.get_attribute("textContent") for name in NAMES.values())
    screenshot(browser, "heatmap-names")


def test_the_dashboard_ranks_properties_by_open_anomalies(browser, live_server, screenshot):
    from anomalies.tests.factories import PropertyFactory

    _flag(PropertyFactory(code="P001"), count=7)
    _flag(PropertyFactory(code="P002"), count=3, severity=Severity.CRITICAL)
    _flag(PropertyFactory(code="P003"), count=5, severity=Severity.HIGH)
    _log_in(browser, live_server)
    panel = browser.find_element(By.ID, "dash-properties")
    ranked = [link.text for link in panel.find_elements(By.CSS_SELECTOR, "td a")]
    assert ranked == ["P001", "P003", "P002"]
    flags = browser.find_element(By.ID, "dash-flags").text
    assert "ANOMALY_USE_GPU not available in this release" in flags
    screenshot(browser, "dashboard-ranking")


def test_an_import_with_errors_lists_them_all(browser, live_server, screenshot, tmp_path):
    rows = statement_rows("P1") + statement_rows("P1", period="2024-02")
    rows[0][7] = "lots"
    rows[2][4] = "2024-13"
    rows[4][3] = "tax_return"
    bad = tmp_path / "bad.csv"
    bad.write_bytes(csv_bytes(rows))
    also_bad = tmp_path / "also_bad.csv"
    also_bad.write_bytes(csv_bytes(statement_rows("P 9")))
    _log_in(browser, live_server, "/admin/documents/documentupload/import/")
    browser.find_element(By.NAME, "files").send_keys(f"{bad}\n{also_bad}")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit][value=Import]").click()
    errors = _wait(browser).until(EC.presence_of_element_located((By.ID, "import-errors")))
    listed = [item.text for item in errors.find_elements(By.TAG_NAME, "li")]
    assert listed == [
        "bad.csv: row 2, column amount: not a number: 'lots'",
        "bad.csv: row 4, column period: bad period '2024-13' (expected YYYY-MM, month 01-12)",
        "bad.csv: row 6, column document_type: unknown document type 'tax_return' (expected one of balance_sheet, "
        "income_statement, cash_flow, rent_roll, mortgage_statement)",
        "also_bad.csv: row 2, column property_code: bad property code 'P 9' (1-20 letters, digits, '_' or '-')",
        "also_bad.csv: row 3, column property_code: bad property code 'P 9' (1-20 letters, digits, '_' or '-')",
        "also_bad.csv: row 4, column property_code: bad property code 'P 9' (1-20 letters, digits, '_' or '-')",
    ]
    assert "6 errors in the import; nothing was imported." in browser.find_element(By.ID, "import-error").text
    assert not DocumentUpload.objects.exists()
    screenshot(browser, "import-errors")
