"""The services pages with Django's test client, every engine a FakeEngine, the proxy a
recorder: what each page shows, each form's errors next to their field, the gate's link,
and the list pages' constant number of queries."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from chaton.adapters.docker.fake import FakeEngine
from chaton.directory import actions as directory_actions
from chaton.directory.models import Account
from chaton.governance.policy import current
from chaton.members import actions as member_actions
from chaton.services import actions, catalog, jobs
from chaton.services.models import Deployment, DesiredState, Host, Instance
from chaton.services.tests.conftest import FakeEngines, RecordedProxy, age_instances
from chaton.testing.second_factor import login_with_second_factor

pytestmark = pytest.mark.django_db(transaction=True)

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(autouse=True)
def _fake_directory(directory):
    return directory


@pytest.fixture
def client(client):
    """The test client, reading pages in English (the source language of the messages)."""
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "en"})
    return client


@pytest.fixture
def admin() -> Account:
    return directory_actions.do_create_account("camille", acting_user=None,
                                               display_name="Camille Admin",
                                               email="camille@example.org", is_admin=True)


@pytest.fixture
def admin_client(client, admin):
    login_with_second_factor(client, admin)
    return client


def create(host: Host, domain: str = "pad.example.org", **options) -> Instance:
    return actions.do_create_instance("webtest", domain, host, acting_user=None, **options)


def text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def allow_closing() -> None:
    """Make closing a service ordinary, as a policy.change decision could."""
    policy = current()
    policy.classes = {"service.close": "ordinary"}
    policy.save()


# -- overview -------------------------------------------------------------------------------------


def test_overview_shows_hosts_instances_live_state_and_the_diagram(
        admin_client, host: Host, engine: FakeEngine) -> None:
    radio = member_actions.do_create_organization("Radio Ourse", "radio@example.org",
                                                  slug="radio-ourse", acting_user=None)
    pad = create(host)
    Instance.objects.filter(pk=pad.pk).update(organization=radio)
    create(host, "team.example.org")
    engine.stop_by_hand("team")
    content = text(admin_client.get(reverse("service-overview")))
    assert 'href="https://pad.example.org/"' in content
    assert reverse("service-instance", args=["pad"]) in content
    assert "Radio Ourse" in content and "the collective" in content
    assert "chaton-test/web:1" in content and "Web test page" in content
    assert "running" in content and "stopped" in content
    # The host: its endpoint, roles, and that its engine answers.
    assert "unix:///run/fake/docker.sock" in content and "runs instances" in content
    assert "answers" in content
    # The diagram is drawn in the page, and the navigation marks "Services".
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in content
    assert f'href="{reverse("service-overview")}" aria-current="page"' in content


def test_an_engine_that_does_not_answer_is_shown_not_raised(
        admin_client, host: Host, engine: FakeEngine) -> None:
    create(host)
    engine.available = False
    content = text(admin_client.get(reverse("service-overview")))
    assert "unreachable" in content and "the fake engine is down" in content
    assert "engine unreachable" in content
    # Docker's own message once, beside what to do, in the reader's language.
    assert content.count("the fake engine is down") == 1
    assert "Start a Docker engine on /run/fake/docker.sock" in content
    assert "the Docker engine of box does not answer" in content


def test_an_unreachable_engine_is_explained_in_french(
        client, admin, host: Host, engine: FakeEngine) -> None:
    engine.available = False
    host.is_default = True
    host.save(update_fields=["is_default"])
    login_with_second_factor(client, admin)
    client.cookies.load({settings.LANGUAGE_COOKIE_NAME: "fr"})
    content = text(client.get(reverse("service-overview")))
    assert content.count("the fake engine is down") == 1
    assert '<html lang="fr">' in content
    # Its advice names the setting to use, whatever the language.
    assert "docker_managed" in content


def test_the_overview_costs_the_same_queries_for_2_and_20_instances(
        admin_client, host: Host) -> None:
    for index in range(2):
        create(host, f"site{index}.example.org")
    admin_client.get(reverse("service-overview"))  # the session, warmed up
    with CaptureQueriesContext(connection) as few:
        text(admin_client.get(reverse("service-overview")))
    for index in range(2, 20):
        create(host, f"site{index}.example.org")
    with CaptureQueriesContext(connection) as many:
        content = text(admin_client.get(reverse("service-overview")))
    assert "site19.example.org" in content
    assert len(few.captured_queries) == len(many.captured_queries), [
        query["sql"] for query in many.captured_queries]


def test_the_pages_are_for_administrators(client, host: Host) -> None:
    create(host)
    noa = directory_actions.do_create_account("noa", acting_user=None, display_name="Noa",
                                              email="noa@example.org")
    urls = [reverse("service-overview"), reverse("service-catalog"),
            reverse("service-diagram"), reverse("service-instance", args=["pad"]),
            reverse("service-instance-create"), reverse("service-plan"),
            reverse("service-root-certificate")]
    for url in urls:
        assert client.get(url).status_code == 302  # to the login page
    client.force_login(noa)
    for url in urls:
        assert client.get(url).status_code == 403
    assert "Services" not in client.get(reverse("profile")).content.decode()


# -- certificates ---------------------------------------------------------------------------------


def test_with_the_internal_authority_the_root_is_offered_with_instructions(
        admin_client, host: Host, recorded_proxy: RecordedProxy) -> None:
    settings.CHATON.proxy.tls = "internal"
    try:
        content = text(admin_client.get(reverse("service-overview")))
        assert "own certificate authority" in content
        assert reverse("service-root-certificate") in content
        assert "update-ca-certificates" in content
        response = admin_client.get(reverse("service-root-certificate"))
        assert response.status_code == 200
        assert response["Content-Disposition"] == 'attachment; filename="chaton-root.crt"'
        assert response.content.decode() == recorded_proxy.admin.root
        # A proxy that does not answer: back to the page, saying why.
        recorded_proxy.admin.down = True
        response = admin_client.get(reverse("service-root-certificate"), follow=True)
        assert "cannot be reached" in text(response)
    finally:
        settings.CHATON.proxy.tls = "acme"
    content = text(admin_client.get(reverse("service-overview")))
    assert reverse("service-root-certificate") not in content
    assert admin_client.get(reverse("service-root-certificate")).status_code == 404


def test_a_certificate_that_failed_shows_on_the_instance_page_with_caddys_reason(
        admin_client, host: Host, engine, recorded_proxy: RecordedProxy) -> None:
    create(host)
    page = reverse("service-instance", args=["pad"])
    assert "No certificate for this domain" not in text(admin_client.get(page))
    recorded_proxy.admin.failures["pad.example.org"] = (
        "[pad.example.org] solving challenges: lookup acme-v02.api.letsencrypt.org: "
        "no such host")
    content = text(admin_client.get(page))
    assert "No certificate for this domain" in content
    assert "lookup acme-v02.api.letsencrypt.org: no such host" in content


# -- the catalogue --------------------------------------------------------------------------------


def test_the_catalogue_shows_each_application_its_pin_ldap_data_and_settings(
        admin_client) -> None:
    content = text(admin_client.get(reverse("service-catalog")))
    privatebin = catalog.get("privatebin")
    for manifest in catalog.real_manifests().values():
        assert manifest.label in content and manifest.image in content
    assert privatebin.ldap.reason[:40] in content
    assert "Largest paste (MB)" in content and "1 … 100" in content
    assert "1week" in content and "1day, 1week, 1month, 1year, never" in content
    assert "a dump of its database" in content  # Etherpad's PostgreSQL
    assert "<code>data</code> (/srv/data)" in content


# -- creating -------------------------------------------------------------------------------------


def test_create_chooses_an_application_then_shows_its_settings(admin_client, host) -> None:
    content = text(admin_client.get(reverse("service-instance-create")))
    assert 'name="application"' in content and "webtest" in content
    content = text(admin_client.get(reverse("service-instance-create"),
                                    {"application": "webtest"}))
    # The settings fields come from the manifest's schema, filled in with their defaults.
    assert 'name="settings-greeting"' in content and 'value="bonjour"' in content
    assert 'name="settings-max_size_mb"' in content and 'max="100"' in content
    assert "From 1 to 100." in content
    # A test application without LDAP login: no group to choose, the reason instead.
    assert 'name="login_group"' not in content and "A static test page has no accounts." in content


def _create_form(**values):
    return {"application": "webtest", "domain": "pad.example.org", "host": "box",
            "organization": "", "slug": "", "settings-greeting": "salut",
            "settings-max_size_mb": "20", **values}


def test_create_deploys_and_shows_the_new_instance(admin_client, host, engine,
                                                   recorded_proxy: RecordedProxy) -> None:
    response = admin_client.post(reverse("service-instance-create"), _create_form())
    assert response.status_code == 302
    assert response["Location"] == reverse("service-instance", args=["pad"])
    instance = Instance.objects.get(slug="pad")
    assert instance.settings == {"greeting": "salut", "max_size_mb": 20}
    assert recorded_proxy.last == {"pad.example.org": "192.0.2.10:20000"}
    content = text(admin_client.get(response["Location"]))
    assert "is deployed at pad.example.org" in content
    assert "running" in content and "Up to date: nothing to change." in content
    assert "Deployed on box, port 20000." in content  # the history


@pytest.mark.parametrize(("values", "field", "message"), [
    ({"settings-max_size_mb": "1000"}, "settings-max_size_mb", "less than or equal to 100"),
    ({"settings-greeting": "x" * 30, "settings-max_size_mb": "2"}, None,
     "do not go together"),
    ({"domain": "not a domain"}, "domain", "is not a domain name"),
])
def test_create_refusals_are_shown_by_their_field_and_nothing_is_made(
        admin_client, host, engine, values, field, message) -> None:
    response = admin_client.post(reverse("service-instance-create"), _create_form(**values))
    content = text(response)
    assert message in content
    forms = (response.context["form"], response.context["settings_form"])
    errors = {name: str(errors) for form in forms for name, errors in form.errors.items()}
    if field is not None:
        assert message in errors[field.removeprefix("settings-")]
    assert not Instance.objects.exists() and not engine.workloads
    assert 'value="pad.example.org"' in content or "not a domain" in content  # kept


def test_create_with_a_taken_domain_or_a_missing_engine_is_refused(admin_client, host,
                                                                  engine) -> None:
    create(host)
    response = admin_client.post(reverse("service-instance-create"),
                                 _create_form(slug="other"))
    assert "already taken" in str(response.context["form"].errors["domain"])
    engine.available = False
    response = admin_client.post(reverse("service-instance-create"),
                                 _create_form(domain="team.example.org"))
    assert "does not answer" in str(response.context["form"].errors["host"])
    assert Instance.objects.count() == 1


def test_a_service_for_a_partner_organization_needs_a_decision(admin_client, host,
                                                               engine) -> None:
    member_actions.do_create_organization("Radio Ourse", "radio@example.org",
                                          slug="radio-ourse", acting_user=None)
    calls = dict(engine.calls)
    response = admin_client.post(reverse("service-instance-create"),
                                 _create_form(organization="radio-ourse"))
    content = text(response)
    assert "extraordinary action" in content
    assert 'href="/decisions/new/?operation=service.open' in content
    # Refused before the engine was asked anything.
    assert not Instance.objects.exists() and engine.calls == calls


# -- an instance's page ---------------------------------------------------------------------------


def test_instance_settings_change_and_their_errors(admin_client, host, engine) -> None:
    instance = create(host)
    url = reverse("service-instance-settings", args=["pad"])
    response = admin_client.post(url, {"settings-greeting": "hello",
                                       "settings-max_size_mb": "30"})
    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.settings == {"greeting": "hello", "max_size_mb": 30}
    content = text(admin_client.get(reverse("service-instance", args=["pad"])))
    assert "Changed: greeting, max_size_mb." in content
    assert 'value="hello"' in content
    response = admin_client.post(url, {"settings-greeting": "y" * 40,
                                       "settings-max_size_mb": "1"})
    assert "do not go together" in text(response)
    instance.refresh_from_db()
    assert instance.settings["greeting"] == "hello"


def test_login_group_of_an_application_with_ldap(admin_client, host, engines) -> None:
    etherpad = catalog.get("etherpad")
    engine = engines(host)
    engine.images |= {etherpad.image, etherpad.database.image}
    group = directory_actions.do_create_group("pads", acting_user=None)
    instance = actions.do_create_instance("etherpad", "pad.example.org", host, acting_user=None)
    content = text(admin_client.get(reverse("service-instance", args=[instance.slug])))
    assert 'name="login_group"' in content and "every account" in content
    values = {f"settings-{name}": value for name, value in instance.settings.items()
              if not isinstance(value, bool)}
    values.update({f"settings-{name}": "on" for name, value in instance.settings.items()
                   if value is True})
    response = admin_client.post(reverse("service-instance-settings", args=[instance.slug]),
                                 {**values, "login_group": "pads"})
    assert response.status_code == 302, response.context["settings_form"].errors
    instance.refresh_from_db()
    assert instance.login_group == group


def test_upgrade_under_way_then_rolled_back_on_the_page(admin_client, host, engine) -> None:
    create(host)
    page = reverse("service-instance", args=["pad"])
    response = admin_client.post(reverse("service-instance-upgrade", args=["pad"]),
                                 {"image": "chaton-test/web:broken"})
    assert response.status_code == 302
    content = text(admin_client.get(page))
    assert "upgrading" in content and "is under way" in content
    jobs.reconcile_job("test")
    content = text(admin_client.get(page))
    assert "rolled back" in content and "did not pass its health check" in content
    assert "running" in content
    response = admin_client.post(reverse("service-instance-upgrade", args=["pad"]),
                                 {"image": "chaton-test/web:1"})
    assert "already runs" in str(response.context["upgrade_form"].errors["image"])


def test_removal_asks_the_short_name_and_goes_through_the_gate(admin_client, host,
                                                                engine) -> None:
    create(host)
    age_instances()
    url = reverse("service-instance-remove", args=["pad"])
    content = text(admin_client.get(url))
    assert 'name="confirm"' in content and "service.close" in content
    response = admin_client.post(url, {"confirm": "team"})
    assert "to confirm" in str(response.context["form"].errors["confirm"])
    response = admin_client.post(url, {"confirm": "pad"})
    content = text(response)
    assert "extraordinary action" in content
    assert "/decisions/new/?operation=service.close" in content
    assert Instance.objects.get(slug="pad").state == DesiredState.RUNNING
    allow_closing()
    response = admin_client.post(url, {"confirm": "pad", "delete_data": "on"})
    assert response.status_code == 302 and response["Location"] == reverse("service-overview")
    assert not Instance.objects.exists() and not engine.volumes


def test_an_unknown_instance_is_404(admin_client) -> None:
    assert admin_client.get(reverse("service-instance", args=["nothing"])).status_code == 404


# -- the diagram, the plan, hosts -----------------------------------------------------------------


def test_the_diagram_downloads_as_a_valid_svg(admin_client, host) -> None:
    create(host)
    response = admin_client.get(reverse("service-diagram"), {"download": "1"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="services.svg"'
    assert "default-src 'none'" in response["Content-Security-Policy"]
    root = ElementTree.fromstring(response.content)  # noqa: S314 - our own drawing
    assert root.tag == f"{SVG}svg"
    assert "pad.example.org" in "".join(root.itertext())


def test_the_plan_page_shows_drift_and_repairs_it(admin_client, host, engine) -> None:
    create(host)
    engine.remove_by_hand("pad")
    content = text(admin_client.get(reverse("service-plan")))
    assert 'class="drift"' in content and "removed by hand" in content
    response = admin_client.post(reverse("service-plan"), {})
    assert response.status_code == 302
    content = text(admin_client.get(reverse("service-plan")))
    assert "1 change was applied." in content and "Every host is up to date" in content
    assert Deployment.objects.filter(kind="repair").count() == 1


def test_the_plan_page_shows_a_route_removed_by_hand(admin_client, host, engine,
                                                      recorded_proxy: RecordedProxy) -> None:
    create(host)
    config = recorded_proxy.admin.read_config()
    del config["apps"]["http"]["servers"]["chaton"]["routes"][0]
    recorded_proxy.admin.load(config)
    content = text(admin_client.get(reverse("service-plan")))
    assert "~ proxy: Route added: https://pad.example.org" in content
    assert "Every host is up to date" not in content
    admin_client.post(reverse("service-plan"), {})
    assert "Every host is up to date" in text(admin_client.get(reverse("service-plan")))


def test_adding_a_host(admin_client, engines: FakeEngines, recorded_proxy) -> None:
    response = admin_client.post(reverse("service-host-create"), {
        "name": "box2", "docker_url": "tcp://192.0.2.20:2376", "address": "192.0.2.20",
        "roles": ["apps"], "swarm": ""})
    assert response.status_code == 302
    host = Host.objects.get(name="box2")
    assert host.roles == ["apps"] and not host.swarm
    response = admin_client.post(reverse("service-host-create"), {
        "name": "box3", "docker_url": "ftp://nowhere", "address": "192.0.2.20",
        "roles": ["apps"], "swarm": ""})
    assert "Docker endpoint is" in str(response.context["form"].errors["docker_url"])
