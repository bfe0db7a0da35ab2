from django.apps import AppConfig


class BatchJobsConfig(AppConfig):
    name = "batch_jobs"
    verbose_name = "Batch reprocessing"
