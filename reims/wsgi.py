"""WSGI entry point (gunicorn reims.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reims.settings")
application = get_wsgi_application()
