"""Settings of the worker processes started by batch_jobs' worker tests: the project's settings plus
the test processors, and a 3-second lease renewed every second, so that a dead worker's chunk is
handed over in seconds while a live one keeps its chunk however long it runs."""

from reims.settings import *  # noqa: F403

CELERY_IMPORTS = ("batch_jobs.tests.processors",)
BATCH_PROCESSING_LEASE_SECONDS = 3
BATCH_PROCESSING_HEARTBEAT_SECONDS = 1
