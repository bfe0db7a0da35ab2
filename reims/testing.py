"""Test support: start a real Celery worker process against the test database and broker.

Used by the ``celery_worker_process`` fixture in the root conftest.py. Nothing here is imported by
production code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)


def test_database_url() -> str:
    """DATABASE_URL of the database the tests run on, for a child process."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


class WorkerProcess:
    """A ``celery -A reims worker`` child process; stop() ends it, kill() sends SIGKILL."""

    def __init__(self, *, queues: str = "anomaly,default", concurrency: int = 1, extra_env: dict | None = None):
        self.name = f"test-{os.getpid()}-{time.time_ns()}"  # the worker's hostname: "<name>@<host>"
        self.log_path = BASE_DIR / "var" / f"{self.name}.log"
        env = {**os.environ, "DATABASE_URL": test_database_url(), **(extra_env or {})}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "reims",
                "worker",
                "-Q",
                queues,
                "--concurrency",
                str(concurrency),
                "--pool",
                "prefork",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{self.name}@%h",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise TimeoutError(f"celery worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and its pool children)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_PATH = "/usr/bin/chromedriver"
SCREENSHOT_DIR = BASE_DIR / "var" / "test-artifacts" / "screenshots"


def chromium_binary() -> str | None:
    return next((path for path in CHROMIUM_PATHS if Path(path).exists()), None)


def headless_chromium():
    """A Selenium driver for Debian's Chromium and ChromeDriver (scripts/install_browser.sh).

    Flags as the workplace's probe uses them: no sandbox as root, and no background networking,
    which this closed network would refuse.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_binary()
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER_PATH), options=options)
    driver.set_page_load_timeout(30)
    return driver


def grant_default_portfolio(user):
    """Let a test user who is not a superuser see the properties tests create: those land in the
    default portfolio unless a test says otherwise (DESIGN §11)."""
    from documents.models import PortfolioGrant, default_portfolio_id

    PortfolioGrant.objects.get_or_create(user=user, portfolio_id=default_portfolio_id())
    return user
