from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class ReimsConfig(AppConfig):
    default = True  # this module also holds the admin's config
    name = "reims"
    verbose_name = "REIMS"


class ReimsAdminConfig(AdminConfig):
    """Makes ``admin.site`` our ReimsAdminSite, so every app's ``admin.register`` lands on it."""

    default_site = "reims.admin_site.ReimsAdminSite"
