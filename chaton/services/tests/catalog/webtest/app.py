"""The test application's ``app.py``: every hook the reconciler calls, on a static page.

Loaded by the catalogue from this extra folder (see chaton.services.catalog.app_module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The test image has no /etc/passwd: root by its number.
SETUP_USER = "0"
SETUP_DIRECTORY = "/www"


def validate(values: Mapping[str, Any]) -> None:
    """A greeting longer than the size limit (in characters, for the test) is refused."""
    if len(values["greeting"]) > values["max_size_mb"] * 10:
        raise ValueError("the greeting is longer than ten characters per megabyte allowed")


def files(values: Mapping[str, Any], context: Mapping[str, str]) -> dict[str, str]:
    """The settings, as the application would read them from a configuration file."""
    return {"/www/settings.txt": f"max_size_mb={values['max_size_mb']}\n"}


def setup_commands(values: Mapping[str, Any], context: Mapping[str, str]) -> list[list[str]]:
    """Write a file once the page answers (in its working directory, as root)."""
    return [["/bin/busybox", "sh", "-c", f"echo set up for {context['domain']} > setup.txt"]]
