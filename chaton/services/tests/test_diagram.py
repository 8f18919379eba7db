"""The diagram: valid SVG naming every host and domain, an arrow from the proxy to each
instance it routes to, every text escaped, long texts shortened with the whole in a tooltip."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from chaton.adapters.docker.fake import FakeEngine
from chaton.members import actions as member_actions
from chaton.services import actions, diagram
from chaton.services.models import Host, Instance

pytestmark = pytest.mark.django_db(transaction=True)

SVG = "{http://www.w3.org/2000/svg}"


def create(host: Host, domain: str, **options) -> Instance:
    return actions.do_create_instance("webtest", domain, host, acting_user=None, **options)


def parse(svg: str) -> ElementTree.Element:
    """Parse a standalone SVG document (XML declaration first) as a strict XML parser does."""
    return ElementTree.fromstring(svg.encode("utf-8"))  # noqa: S314 - our own drawing


def texts(root: ElementTree.Element) -> str:
    return "\n".join(root.itertext())


def test_every_host_and_domain_is_drawn_with_an_arrow_per_route(
        host: Host, engine: FakeEngine) -> None:
    other = actions.do_create_host("box2", "tcp://192.0.2.20:2376", acting_user=None,
                                   address="192.0.2.20", swarm=True)
    create(host, "pad.example.org")
    create(host, "team.example.org")
    create(other, "bin.example.org")
    stopped = create(other, "quiet.example.org")
    actions.do_set_instance_state(stopped, "stopped", acting_user=None)
    svg = diagram.draw(diagram.landscape(), standalone=True)
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    words = texts(root)
    for name in ("box", "box2", "pad.example.org", "team.example.org", "bin.example.org",
                 "quiet.example.org", "Reverse proxy (Caddy)", "Docker Swarm manager"):
        assert name in words
    # One arrow per route: the stopped instance has none.
    routes = [path for path in root.iter(f"{SVG}path") if path.get("class") == "route"]
    assert len(routes) == 3
    hosts = [group for group in root.iter(f"{SVG}g") if group.get("class") == "host"]
    assert len(hosts) == 2
    assert len([group for group in root.iter(f"{SVG}g")
                if group.get("class") == "instance"]) == 4
    # Inline in a page: the same drawing without the XML declaration.
    assert diagram.draw(diagram.landscape()).startswith("<svg ")


def test_names_are_escaped(host: Host, engine: FakeEngine) -> None:
    hostile = member_actions.do_create_organization(
        '<script>alert("owner")</script> & Co', "radio@example.org", slug="radio",
        acting_user=None)
    instance = create(host, "pad.example.org")
    Instance.objects.filter(pk=instance.pk).update(organization=hostile)
    engine.available = False
    landscape = diagram.landscape()
    host.docker_url = "unix:///<script>boom()</script>"  # the host's endpoint is drawn too
    error = diagram.HostStatus(host, reachable=False, error="engine down")
    svg = diagram.draw(diagram.Landscape([error], landscape.instances, https_port=443,
                                         by_host=landscape.by_host), standalone=True)
    assert "<script" not in svg
    root = parse(svg)
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    words = texts(root)
    assert '<script>alert("owner")</script> & Co' in words
    assert "<script>boom()</script>" in words
    assert "&lt;script&gt;" in svg


def test_a_long_domain_is_shortened_and_given_whole_in_its_tooltip(
        host: Host, engine: FakeEngine) -> None:
    domain = "a-very-long-name-for-a-pad-that-nobody-would-type-twice." * 3 + "example.org"
    create(host, domain)
    root = parse(diagram.draw(diagram.landscape(), standalone=True))
    titles = [element.text for element in root.iter(f"{SVG}title")]
    assert domain in titles
    shown = [element for element in root.iter(f"{SVG}text")
             if element.find(f"{SVG}title") is not None
             and element.find(f"{SVG}title").text == domain]
    assert shown and "…" in "".join(shown[0].itertext())


def test_nothing_yet_still_draws(engines) -> None:
    root = parse(diagram.draw(diagram.landscape(), standalone=True))
    assert "No host yet." in texts(root)
