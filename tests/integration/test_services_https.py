"""The services' interfaces on real servers: an instance opened through the API answers at
https://<domain> through Caddy with a certificate pebble issued; the API and the diagram
show it; closing it takes a decision of the members, after which the domain is no longer
served.

The session's dockerd runs the local test image ``chaton-test/web:1`` (nothing is pulled),
each test gets its own Caddy whose ACME CA is the session's pebble, and the accounts live
in the session's slapd. Nothing here skips: a server that does not start is a failure.
"""

from __future__ import annotations

import secrets
import ssl
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from django.conf import settings

from chaton.adapters.caddy.server import ManagedCaddy
from chaton.governance import actions as governance
from chaton.governance.tests.test_api import api_for, assert_error, make_account, make_member
from chaton.services import actions
from chaton.services.models import Host, Instance
from chaton.testing.acme import Pebble, https_get, wait_for_https
from chaton.testing.docker import TemporaryDockerd
from chaton.testing.jobs import finish_jobs
from chaton.testing.voters import own_session

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("english")]


@pytest.fixture
def host(docker_engine: TemporaryDockerd, test_catalog: Path, caddy: ManagedCaddy,
         ldap_directory: object) -> Host:
    """The session's dockerd as the default host (published ports on 127.0.0.1), behind a
    real Caddy whose certificates come from pebble."""
    return actions.do_create_host("local", docker_engine.url, acting_user=None,
                                  address="127.0.0.1", is_default=True)


def poll_job(api, response, seconds: float = 120) -> dict:
    """Given a 202 answer, poll its job until it is over; return it."""
    assert response.status_code == 202, response.content
    job = response.json()
    deadline = time.monotonic() + seconds
    while job["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = api.get(job["url"].removeprefix("/api/v1")).json()
    return job


def test_an_instance_opened_through_the_api_answers_over_https(
        client, host: Host, pebble: Pebble) -> None:
    domain = f"pad-{secrets.token_hex(3)}.chaton.test"
    port = settings.CHATON.proxy.https_port
    roots = pebble.roots_path()
    api = api_for(client, make_account("wren", is_admin=True))
    voters = [make_member(uid) for uid in ("aubin", "brune", "cyan")]

    response = api.post("/services/instances", {
        "application": "webtest", "domain": domain, "settings": {"greeting": "bonjour"}})
    # A job that the lane's thread carries out; polled until the instance is deployed.
    job = poll_job(api, response)
    assert job["state"] == "succeeded", job
    assert job["result"]["live"]["state"] in ("running", "starting")
    answer = wait_for_https(domain, port, roots=roots, expect=b"chaton-test web version 1")
    assert answer.issuer == pebble.intermediate().subject
    assert https_get(domain, port, roots=roots, path="/greeting.txt").body == b"bonjour\n"
    listed = api.get("/services/instances").json()
    # Docker's own health check may not have run yet: "starting" until it has.
    assert [item["domain"] for item in listed] == [domain]
    assert listed[0]["live"]["state"] in ("running", "starting")
    diagram = ElementTree.fromstring(  # noqa: S314 - our own drawing
        api.get("/services/diagram.svg").content)
    assert domain in "".join(diagram.itertext())

    # A week later, closing it directly is refused; the members' decision closes it.
    from chaton.services.tests.conftest import age_instances

    age_instances()
    slug = listed[0]["slug"]
    assert_error(api.delete(f"/services/instances/{slug}?confirm={slug}"), 403,
                 "decision_required")
    assert https_get(domain, port, roots=roots).status == 200
    decision = governance.do_propose("Close the test pad", [
        {"type": "service.close", "params": {"instance": slug, "delete_data": True}}],
        acting_user=voters[0])
    for voter in voters[:2]:
        governance.do_vote(decision, "for", acting_user=voter, credential=own_session(voter))
    governance.execute_decisions()
    finish_jobs()  # the removal runs in the long lane
    assert not Instance.objects.exists()
    deadline = time.monotonic() + 10
    while True:
        try:
            if https_get(domain, port, roots=roots, timeout=2).status == 404:
                break
        except (ssl.SSLError, OSError):
            break  # no certificate for a domain Caddy no longer serves: also gone
        assert time.monotonic() < deadline, f"{domain} is still served"
        time.sleep(0.05)
    assert not host.instances.exists()
