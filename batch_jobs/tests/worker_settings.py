"""Settings of the worker processes started by batch_jobs' worker tests: the project's settings plus
the test processors and a short lease so that the reaper can hand a dead worker's chunk over."""

from reims.settings import *  # noqa: F403

CELERY_IMPORTS = ("batch_jobs.tests.processors",)
BATCH_PROCESSING_LEASE_SECONDS = 3
