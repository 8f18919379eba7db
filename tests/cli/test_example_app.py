"""An app plugs in from its own folder and one line in INSTALLED_APPS.

``chaton.testing.example_app`` declares a page, an API route, a navigation
entry, a CLI group, a worker job and a demo part in its ``AppConfig``;
``chaton.testing.example_settings`` is Chaton's settings with that one app
more. Each check runs in a process of its own, started with those settings, so
that the URL map, the API and the command are built from the installed apps as
they are in production — no central file names the example app.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import chaton
from chaton.core.servers import free_port

SOURCE_ROOT = Path(chaton.__file__).resolve().parent.parent
EXAMPLE_SETTINGS = "chaton.testing.example_settings"

#: Run in a process with the example settings: the page and the API through Django's test
#: client, as an administrator; prints what the test checks, as JSON.
PAGES_SCRIPT = """
import json
import django
django.setup()
from django.test import Client
from chaton.core import registry
from chaton.directory.actions import do_create_account

# The directory does not answer: the account's entry stays pending, as after any outage.
admin = do_create_account("ada", acting_user=None, display_name="Ada", email="ada@example.org",
                          is_admin=True)
client = Client()
client.force_login(admin)
page = client.get("/example/")
other = client.get("/me/")
ping = client.get("/api/v1/example/ping")
unknown = client.get("/api/v1/example/nothing-here")
print(json.dumps({
    "page_status": page.status_code, "page": page.content.decode(),
    "other_page": other.content.decode(),
    "ping_status": ping.status_code, "ping": ping.json(),
    "unknown_status": unknown.status_code, "unknown": unknown.json(),
    "demo": [loader.__module__ for loader in registry.demo_loaders()],
}))
"""


@pytest.fixture(scope="module")
def environment() -> Iterator[dict[str, str]]:
    """Environment variables for a Chaton that installs the example app, in a data
    directory of its own; every server address is a loopback port nothing listens on."""
    base = Path(tempfile.mkdtemp(prefix="chaton-example-"))
    configuration = base / "chaton.toml"
    configuration.touch()
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("CHATON_", "RESTIC_", "DJANGO_"))}
    environment.update({
        "PYTHONPATH": str(SOURCE_ROOT),
        "DJANGO_SETTINGS_MODULE": EXAMPLE_SETTINGS,
        "CHATON_CONFIG": str(configuration),
        "CHATON_DATA_DIR": str(base / "var"),
        "CHATON_LANGUAGE": "en",
        "CHATON_LDAP_MANAGED": "false",
        "CHATON_LDAP_URL": f"ldap://127.0.0.1:{free_port()}",
        "CHATON_SERVICES_DOCKER_URL": f"tcp://127.0.0.1:{free_port()}",
        "CHATON_SERVICES_DOCKER_MANAGED": "no",
        "CHATON_PROXY_MANAGED": "false",
        "CHATON_PROXY_ADMIN_URL": f"http://127.0.0.1:{free_port()}",
    })
    try:
        _run(environment, "-m", "django", "migrate", "--no-input", "-v", "0")
        yield environment
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(environment: dict[str, str], *arguments: str, check: bool = True
         ) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, *arguments], env=environment,
        cwd=Path(environment["CHATON_CONFIG"]).parent, capture_output=True, text=True,
        timeout=300, check=False)
    if check:
        assert completed.returncode == 0, (arguments, completed.stdout, completed.stderr)
    return completed


def _commands(help_text: str) -> list[str]:
    """Return the command names listed in the panel of a ``--help`` output, in order."""
    return [match.group(1) for match in re.finditer(r"^│ ([a-z][a-z-]*) ", help_text, re.M)]


def test_its_cli_group_is_listed_and_runs(environment: dict[str, str]) -> None:
    listed = _run(environment, "-m", "chaton", "--help").stdout
    assert "The example app." in listed
    # After the built-in commands and the groups of Chaton's own apps.
    commands = _commands(listed)
    assert commands.index("worker") < commands.index("directory") < commands.index("example")
    assert commands[-1] == "example"
    assert "hello" in _run(environment, "-m", "chaton", "example", "--help").stdout
    said = _run(environment, "-m", "chaton", "example", "hello").stdout
    assert said.strip() == "hello from the example app"


def test_without_its_line_in_installed_apps_it_is_nowhere(
        environment: dict[str, str]) -> None:
    plain = {**environment, "DJANGO_SETTINGS_MODULE": "chaton.project.settings"}
    commands = _commands(_run(plain, "-m", "chaton", "--help").stdout)
    assert "example" not in commands and "service" in commands
    refused = _run(plain, "-m", "chaton", "example", "hello", check=False)
    assert refused.returncode == 2 and "No such command" in refused.stderr


def test_the_worker_runs_its_job(environment: dict[str, str]) -> None:
    # The directory and the engine do not answer here: their jobs fail, the example's runs.
    ran = _run(environment, "-m", "chaton", "worker", "--once", check=False)
    assert "example.ping: the example app's job ran" in ran.stdout, (ran.stdout, ran.stderr)
    assert "directory.sync" in ran.stdout  # the directory's jobs still come first
    assert ran.stdout.index("directory.sync") < ran.stdout.index("example.ping")


def test_its_page_api_route_nav_entry_and_demo_part_are_mounted(
        environment: dict[str, str]) -> None:
    answer = json.loads(_run(environment, "-c", PAGES_SCRIPT).stdout)
    assert answer["page_status"] == 200
    assert "The example page" in answer["page"]
    # Its entry in the administration bar, marked current on its own page …
    assert '<a href="/example/" aria-current="page">Example</a>' in answer["page"]
    # … after Chaton's own entries, and not current elsewhere.
    assert answer["page"].index('href="/services/"') < answer["page"].index('href="/example/"')
    assert '<a href="/example/">Example</a>' in answer["other_page"]
    assert (answer["ping_status"], answer["ping"]) == (200, {"example": "pong"})
    # The fallback router stays last: an unknown path under the app's prefix is a coded 404.
    assert answer["unknown_status"] == 404 and answer["unknown"]["code"] == "not_found"
    # Its demo part runs by its order (60): after the services' (50).
    assert (answer["demo"].index("chaton.testing.example_app.demo")
            > answer["demo"].index("chaton.services.demo"))
