import batch_jobs.tests.processors  # noqa: F401 - registers the test processors in this process
