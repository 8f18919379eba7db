"""WSGI entry point, served by waitress in ``chaton serve``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chaton.project.settings")
application = get_wsgi_application()
