"""Chaton's settings with one app more: ``chaton.testing.example_app`` (tests only)."""

from chaton.project.settings import *  # noqa: F403
from chaton.project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "chaton.testing.example_app"]
