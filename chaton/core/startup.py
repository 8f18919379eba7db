"""Starting Django outside a web server: the ``chaton`` command and the child processes the
worker starts (``python -m chaton.backups``).

Importing this module imports no Django: a command parses its options first.
"""

from __future__ import annotations

import os

#: The settings every process of Chaton runs with.
SETTINGS_MODULE = "chaton.project.settings"


def choose_settings() -> None:
    """Name Chaton's settings module for Django, unless one of Chaton's is named already (a
    settings module built on them that installs an app more, say); never another
    project's that a shell exported."""
    if not os.environ.get("DJANGO_SETTINGS_MODULE", "").startswith("chaton."):
        os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE


def setup_django() -> None:
    """Configure Django with Chaton's settings and activate the collective's language.

    Safe to call more than once. Raise ConfigError when chaton.toml or a
    ``CHATON_*`` variable holds an invalid value.
    """
    import django
    from django.apps import apps

    if not apps.ready:
        choose_settings()
        django.setup()
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
