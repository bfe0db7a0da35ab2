"""The console in a real headless Chromium: log in and see the dashboard."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_login_and_dashboard(browser, live_server, django_user_model, screenshot):
    django_user_model.objects.create_superuser("analyst", "a@example.com", "s3cret-pass-123")
    browser.get(f"{live_server.url}/admin/")
    browser.find_element(By.NAME, "username").send_keys("analyst")
    browser.find_element(By.NAME, "password").send_keys("s3cret-pass-123")
    screenshot(browser, "login")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    dashboard = WebDriverWait(browser, 20).until(EC.presence_of_element_located((By.ID, "dashboard")))
    assert "Open anomalies by severity" in dashboard.text
    assert "FEATURE_FLAG_PYOD" in browser.find_element(By.ID, "dash-flags").text
    screenshot(browser, "dashboard")
