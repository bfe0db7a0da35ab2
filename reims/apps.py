from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ReimsConfig(AppConfig):
    default = True  # this module also holds the admin's config
    name = "reims"
    verbose_name = "REIMS"


class ReimsAdminConfig(admin_apps.AdminConfig):
    """Makes ``admin.site`` our ReimsAdminSite, so every app's ``admin.register`` lands on it."""

    default = False
    default_site = "reims.admin_site.ReimsAdminSite"
