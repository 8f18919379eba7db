"""The ChatonsInfos files: every file Chaton writes passes the validator, is served at the
well-known path as UTF-8 text, and says what the desired state, the probes and the statistics
hold (a service opened mid-year has empty leading cells, never zeros)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from typer.testing import CliRunner

from chaton.core import clock
from chaton.monitoring.models import Maintenance, Probe
from chaton.stats.models import Sample
from chaton.transparency import actions, chatonsinfos
from chaton.transparency.check import check_served, local_fetcher
from chaton.transparency.tests.conftest import make_instance
from chaton.transparency.validator import errors, parse, validate

pytestmark = pytest.mark.django_db
WELL_KNOWN = "/.well-known/chatonsinfos/"


def values(text: str) -> dict[str, str]:
    return {key: value for key, (_line, value) in parse(text)[0].items()}


@pytest.fixture
def profile(public_url: str) -> Any:
    return actions.do_update_profile(
        acting_user=None, name="Chaton Demo", description="A hosting collective\nof friends",
        website="https://chaton-demo.example.org/", type="ASSOCIATION", status="ACTIVE",
        start_date=dt.date(2018, 3, 1), chatons_start_date=dt.date(2019, 1, 15),
        country_name="France", country_code="fr", contact_email="contact@example.org",
        legal_url="https://chaton-demo.example.org/legal",
        funding={"liberapay": "https://liberapay.com/chaton-demo/"})


def test_the_organization_file_passes_the_validator_and_links_every_service(
        client: Any, profile: Any, host: Any) -> None:
    make_instance(host, "pads")
    make_instance(host, "paste", application="privatebin")
    make_instance(host, "gone", state="removed")
    response = client.get(WELL_KNOWN + "organization.properties")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=UTF-8"
    text = response.content.decode("utf-8")
    assert validate(text) == []
    found = values(text)
    assert found["file.class"] == "organization"
    assert found["file.url"] == ("https://chaton.example.org/.well-known/chatonsinfos/"
                                 "organization.properties")
    assert found["organization.description"] == "A hosting collective of friends"
    assert found["organization.country.code"] == "FR"
    assert found["organization.memberof.chatons.startdate"] == "2019-01-15"
    assert found["organization.funding.liberapay"] == "https://liberapay.com/chaton-demo/"
    subs = {key: value for key, value in found.items() if key.startswith("subs.")}
    assert subs == {
        "subs.pads": "https://chaton.example.org/.well-known/chatonsinfos/pads.properties",
        "subs.paste": "https://chaton.example.org/.well-known/chatonsinfos/paste.properties"}
    dt.datetime.fromisoformat(found["file.datetime"])


def test_each_service_file_passes_the_validator(client: Any, profile: Any, host: Any,
                                                tech: Any) -> None:
    actions.do_update_host_facts(host, acting_user=None, provider_type="HOSTEDSERVER",
                                 server_type="VIRTUAL", country_name="France", country_code="FR")
    make_instance(host, "pads", login_group=tech)
    make_instance(host, "paste", application="privatebin")
    make_instance(host, "chat", application="mattermost")
    for slug in ("pads", "paste", "chat"):
        response = client.get(f"{WELL_KNOWN}{slug}.properties")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/plain; charset=UTF-8"
        text = response.content.decode("utf-8")
        assert validate(text) == [], (slug, validate(text))
    pads = values(client.get(f"{WELL_KNOWN}pads.properties").content.decode())
    assert pads["service.website"] == "https://pads.example.org/"
    assert pads["service.registration"] == "Member"
    assert pads["service.status.level"] == "ON"
    assert pads["software.name"] == "Etherpad"
    assert pads["software.license.name"] == "Apache-2.0"
    assert pads["software.version"] == "3.2.0"
    assert pads["host.provider.type"] == "HOSTEDSERVER"
    assert pads["host.country.code"] == "FR"
    paste = values(client.get(f"{WELL_KNOWN}paste.properties").content.decode())
    assert paste["service.registration"] == "None"


def test_status_comes_from_the_probes_maintenance_and_the_desired_state(
        profile: Any, host: Any) -> None:
    pads = make_instance(host, "pads")
    stopped = make_instance(host, "chat", application="mattermost", state="stopped")
    now = clock.now()
    probe = Probe.objects.create(key="instance-pads-https", name="pads", kind="http",
                                 target="https://pads.example.org/", service="Pads",
                                 instance=pads, state="down")
    assert values(chatonsinfos.service_file(pads))["service.status.level"] == "DOWN"
    Maintenance.objects.create(title="Upgrade", starts_at=now - dt.timedelta(minutes=5),
                               ends_at=now + dt.timedelta(hours=1), services=[probe.service])
    assert values(chatonsinfos.service_file(pads))["service.status.level"] == "MAINTENANCE"
    assert values(chatonsinfos.service_file(stopped))["service.status.level"] == "OFF"


def test_metrics_of_a_service_opened_mid_year_have_empty_leading_cells(
        profile: Any, host: Any) -> None:
    pads = make_instance(host, "pads")
    day = dt.date(2025, 7, 1)
    while day <= dt.date(2025, 12, 31):
        Sample.objects.create(figure="etherpad.pads", subject="pads", day=day,
                              value=float(day.month * 10 + (day.day == 1)),
                              collected_at=clock.now())
        Sample.objects.create(figure="http.requests", subject="pads", day=day, value=100.0,
                              collected_at=clock.now())
        day += dt.timedelta(days=1)
    Sample.objects.create(figure="etherpad.pads", subject="other", day=dt.date(2025, 3, 1),
                          value=5.0, collected_at=clock.now())
    text = chatonsinfos.service_file(pads)
    assert validate(text) == [], validate(text)
    found = values(text)
    # A gauge's month is its last sample; a count's the sum of its days.
    assert found["metrics.etherpad.pads.2025.months"] == ";;;;;;70;80;90;100;110;120"
    assert found["metrics.http.hits.2025.months"] == ";;;;;;3100;3100;3000;3100;3000;3100"
    days = found["metrics.http.hits.2025.days"].split(";")
    assert len(days) == 365 and days[:181] == [""] * 181 and days[181] == "100"
    weeks = found["metrics.http.hits.2025.weeks"].split(";")
    assert len(weeks) == 52 and weeks[0] == "" and weeks[-1] == "700"
    assert "metrics.etherpad.pads.name" in found


def test_unknown_and_removed_instances_are_not_served(client: Any, host: Any) -> None:
    make_instance(host, "gone", state="removed")
    for name in ("gone", "nothing", "..%2Fsecrets"):
        response = client.get(f"{WELL_KNOWN}{name}.properties")
        assert response.status_code == 404


def test_check_follows_the_subs_and_reports_a_bad_file(profile: Any, host: Any) -> None:
    make_instance(host, "pads")
    reports = check_served(chatonsinfos.file_url("organization"), local_fetcher())
    assert [report.url.rsplit("/", 1)[1] for report in reports] == [
        "organization.properties", "pads.properties"]
    assert all(report.ok for report in reports), [report.findings for report in reports]

    def bad(url: str) -> tuple[int, str, str]:
        return 200, "text/html", "file.class = organization\nsubs.x = https://x.example.org/a\n"

    broken = check_served("https://x.example.org/organization.properties", bad)
    assert not broken[0].ok
    assert any("text/plain" in finding.message for finding in errors(broken[0].findings))


def test_chaton_chatonsinfos_check_exits_0_on_good_files(profile: Any, host: Any) -> None:
    from chaton.cli.transparency import chatonsinfos_app

    make_instance(host, "pads")
    result = CliRunner().invoke(chatonsinfos_app, ["check"])
    assert result.exit_code == 0, result.output
    assert "ok    https://chaton.example.org/.well-known/chatonsinfos/pads.properties" in \
        result.output


def test_the_demo_profile_gives_valid_files_and_loads_once(host: Any) -> None:
    from chaton.core.demo import DemoReport
    from chaton.transparency import demo

    make_instance(host, "www", application="homepage")
    first, second = DemoReport(), DemoReport()
    demo.load(first)
    demo.load(second)
    assert len(first.created) == 2 and second.created == []
    assert validate(chatonsinfos.organization_file()) == []
    www = chatonsinfos.service_file(host.instances.get())
    assert validate(www) == [], validate(www)
    assert values(www)["host.provider.type"] == "HOSTEDSERVER"
