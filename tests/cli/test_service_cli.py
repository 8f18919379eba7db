"""``chaton service …``: hosts, the catalogue, instances from creation to removal, the plan,
reconcile and the diagram — in-process, every engine a FakeEngine, the proxy a recorder —
and every refusal as one line on stderr with exit status 2 and nothing made."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import translation
from typer.testing import CliRunner

from chaton.adapters.caddy import use_caddy
from chaton.adapters.docker import use_docker
from chaton.adapters.docker.fake import FakeEngine
from chaton.cli.app import app
from chaton.governance.policy import current
from chaton.services import actions, apply, proxy
from chaton.services.models import Deployment, Host, Instance
from chaton.services.tests.conftest import ADDRESS, FakeEngines, RecordedProxy, saved_archive

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def english(settings, directory):
    settings.LANGUAGE_CODE = "en"
    yield
    translation.deactivate()


@pytest.fixture
def engines(test_catalog: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEngines]:
    monkeypatch.setattr(apply, "DRAIN_SECONDS", 0)
    fakes = FakeEngines()
    with use_docker(fakes):
        yield fakes


@pytest.fixture
def recorded_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordedProxy]:
    recorder = RecordedProxy()
    monkeypatch.setattr(proxy, "sync_proxy", recorder)
    with use_caddy(recorder.admin):
        yield recorder


@pytest.fixture
def host(engines: FakeEngines, recorded_proxy: RecordedProxy) -> Host:
    return actions.do_create_host("box", "unix:///run/fake/docker.sock", acting_user=None,
                                  address=ADDRESS, is_default=True)


@pytest.fixture
def engine(host: Host, engines: FakeEngines) -> FakeEngine:
    return engines(host)


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*arguments: str, input: str | None = None):
        return runner.invoke(app, ["service", *arguments], input=input)

    return invoke


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def one_error_line(result) -> str:
    """Assert the command failed the documented way and return its only stderr line."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chaton: error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_hosts_add_and_list(cli, engines: FakeEngines, recorded_proxy) -> None:
    output = ok(cli("host", "add", "box", "unix:///run/fake/docker.sock", "--address", ADDRESS,
                    "--role", "apps", "--role", "proxy", "--default"))
    assert "Host box added." in output
    host = Host.objects.get()
    assert host.roles == ["apps", "proxy"] and host.is_default and not host.swarm
    engines.engines["down"] = FakeEngine(available=False)
    line = one_error_line(cli("host", "add", "down", "tcp://192.0.2.9:2376"))
    assert "does not answer" in line
    ok(cli("host", "add", "down", "tcp://192.0.2.9:2376", "--no-check"))
    output = ok(cli("host", "list"))
    assert "box *" in output
    engine_column = " ".join(" ".join(line.split("│")[-2].split())
                             for line in output.splitlines() if line.count("│") > 2)
    assert "answers, Docker fake" in engine_column
    assert "the fake engine is down" in engine_column
    assert "Docker endpoint is" in one_error_line(cli("host", "add", "x", "ftp://x"))


def test_catalog_lists_and_shows_an_application(cli, test_catalog) -> None:
    output = ok(cli("catalog"))
    for name in ("etherpad", "privatebin", "nextcloud", "webtest"):
        assert name in output
    output = ok(cli("catalog", "privatebin"))
    assert "Login with the directory: no — PrivateBin has no accounts" in output
    assert "max_paste_size_mb" in output and "1 … 100" in output and "1week" in output
    assert "Backed up: data" in output
    assert "no application nothing" in one_error_line(cli("catalog", "nothing"))


def test_an_instance_from_creation_to_removal(cli, host, engine,
                                              recorded_proxy: RecordedProxy) -> None:
    output = ok(cli("instance", "add", "webtest", "pad.example.org", "greeting=salut",
                    "max_size_mb=20"))
    assert "Instance pad deployed at https://pad.example.org (host box, port 20000)" in output
    instance = Instance.objects.get()
    assert instance.settings == {"greeting": "salut", "max_size_mb": 20}
    assert recorded_proxy.last == {"pad.example.org": f"{ADDRESS}:20000"}
    output = ok(cli("instance", "list"))
    assert "pad.example.org" in output and "running" in output and "the collective" in output
    ok(cli("instance", "set", "pad", "max_size_mb=30"))
    instance.refresh_from_db()
    assert instance.settings["max_size_mb"] == 30
    output = ok(cli("instance", "upgrade", "pad", "chaton-test/web:2"))
    assert "healthy" in output
    result = cli("instance", "upgrade", "pad", "chaton-test/web:broken")
    assert result.exit_code == 1 and "rolled back" in result.stdout
    output = ok(cli("instance", "show", "pad"))
    assert "State: running" in output and "max_size_mb = 30" in output
    assert "Image: chaton-test/web:2" in output and "rolled back" in output
    assert "Up to date: nothing to change." in output
    # Removing: the short name typed wrong, then right (closing made ordinary).
    policy = current()
    policy.classes = {"service.close": "ordinary"}
    policy.save()
    line = one_error_line(cli("instance", "remove", "pad", input="team\n"))
    assert "to confirm" in line
    output = ok(cli("instance", "remove", "pad", "--delete-data", input="pad\n"))
    assert "pad is removed with its data." in output
    assert not Instance.objects.exists() and not engine.workloads and not engine.volumes


@pytest.mark.parametrize(("arguments", "message"), [
    (["nothing", "pad.example.org"], "no application nothing"),
    (["webtest", "not a domain"], "is not a domain name"),
    (["webtest", "pad.example.org", "max_size_mb=1000"], "Invalid setting max_size_mb"),
    (["webtest", "pad.example.org", "max_size_mb=many"], "is not a whole number"),
    (["webtest", "pad.example.org", "greeting"], "write each setting as name=value"),
    (["webtest", "pad.example.org", "colour=red"], "Invalid setting colour"),
    (["webtest", "pad.example.org", "--image", "chaton-test/web:missing"],
     "does not exist on the host"),
    (["webtest", "pad.example.org", "--host", "nowhere"], "No host is named"),
    (["webtest", "pad.example.org", "--login-group", "nobody"], "No group is named nobody"),
])
def test_bad_input_is_one_line_and_nothing_is_made(cli, host, engine, arguments,
                                                   message) -> None:
    assert message in one_error_line(cli("instance", "add", *arguments))
    assert not Instance.objects.exists() and not engine.workloads and not engine.networks


def test_taken_domain_port_clash_and_unreachable_engine(cli, host, engine) -> None:
    ok(cli("instance", "add", "webtest", "pad.example.org"))
    assert "already taken" in one_error_line(cli("instance", "add", "webtest",
                                                 "pad.example.org", "--slug", "other"))
    engine.taken_ports.add(20001)
    assert "already in use" in one_error_line(cli("instance", "add", "webtest",
                                                  "team.example.org", "--port", "20001"))
    engine.available = False
    assert "does not answer" in one_error_line(cli("instance", "add", "webtest",
                                                   "team.example.org"))
    assert "No instance has the short name" in one_error_line(cli("instance", "show", "x"))
    assert Instance.objects.count() == 1


def test_plan_and_reconcile_repair_a_change_made_by_hand(cli, host, engine) -> None:
    ok(cli("instance", "add", "webtest", "pad.example.org"))
    assert "Every host is up to date." in ok(cli("plan"))
    engine.remove_by_hand("pad")
    output = ok(cli("plan"))
    assert "! box: chaton-pad-app-" in output and "removed by hand" in output
    output = ok(cli("reconcile", "--dry-run"))
    assert "Dry run: nothing was changed." in output and not engine.workloads
    output = ok(cli("reconcile"))
    assert "1 change(s) applied, 0 failed." in output and len(engine.workloads) == 1
    assert Deployment.objects.filter(kind="repair").count() == 1
    assert "Every host is up to date." in ok(cli("plan"))
    engine.available = False
    result = cli("reconcile")
    assert result.exit_code == 1


def test_plan_shows_a_route_changed_by_hand_before_the_reconcile_repairs_it(
        cli, host, engine, recorded_proxy: RecordedProxy) -> None:
    ok(cli("instance", "add", "webtest", "pad.example.org"))
    assert "Every host is up to date." in ok(cli("plan"))
    # Someone points the pad's route elsewhere through Caddy's admin API.
    config = recorded_proxy.admin.read_config()
    route = config["apps"]["http"]["servers"]["chaton"]["routes"][0]
    route["handle"][0]["upstreams"] = [{"dial": "203.0.113.9:80"}]
    recorded_proxy.admin.load(config)
    output = ok(cli("plan"))
    assert ("~ proxy: Route changed: https://pad.example.org → 192.0.2.10:20000 "
            "(was 203.0.113.9:80)") in output
    assert "Every host is up to date." not in output
    ok(cli("reconcile"))
    assert "Every host is up to date." in ok(cli("plan"))
    # A proxy that does not answer is said, never taken for "up to date".
    recorded_proxy.admin.down = True
    output = ok(cli("plan"))
    assert "x proxy: The reverse proxy (Caddy) cannot be reached" in output
    assert "Every host is up to date." not in output


def test_instance_add_never_claims_https_without_a_certificate(
        cli, host, engine, recorded_proxy: RecordedProxy) -> None:
    reason = ("[pad.example.org] solving challenges: lookup acme-v02.api.letsencrypt.org: "
              "no such host")
    recorded_proxy.admin.failures["pad.example.org"] = reason
    result = cli("instance", "add", "webtest", "pad.example.org")
    assert result.exit_code == 1
    assert "deployed at https://" not in result.stdout
    assert "does not work yet: the proxy has no certificate" in result.stdout
    assert "no such host" in result.stdout
    assert Instance.objects.get().state == "running"  # deployed all the same
    assert "No certificate for pad.example.org" in ok(cli("instance", "show", "pad"))


def test_an_image_loaded_from_an_archive_runs_pinned_by_its_id(
        cli, host, engines, engine, tmp_path: Path) -> None:
    data, image_id = saved_archive(["chaton-test/web:offline"])
    archive = tmp_path / "web.tar"
    archive.write_bytes(data)
    output = ok(cli("image", "import", str(archive)))
    assert f"Loaded on box: chaton-test/web:offline, pinned as {image_id}." in output
    assert image_id[:20] in ok(cli("image", "list")).replace("\n", "")
    # By its name: pinned by the id, which Docker never pulls.
    ok(cli("instance", "add", "webtest", "pad.example.org", "--image",
           "chaton-test/web:offline"))
    instance = Instance.objects.get()
    assert instance.image == image_id
    assert engine.workloads[next(iter(engine.workloads))].workload.image == image_id
    assert "Image: chaton-test/web:offline (sha256:" in ok(cli("instance", "show", "pad"))
    # By its id, too; and the same archive twice changes nothing.
    ok(cli("image", "import", str(archive)))
    ok(cli("instance", "add", "webtest", "team.example.org", "--image", image_id))
    assert Instance.objects.get(slug="team").image == image_id


def test_only_images_loaded_onto_that_host_are_accepted(
        cli, host, engines, engine, tmp_path: Path) -> None:
    data, image_id = saved_archive(["chaton-test/web:offline"])
    other = actions.do_create_host("box2", "unix:///run/fake/other.sock", acting_user=None,
                                   address=ADDRESS)
    archive = tmp_path / "web.tar"
    archive.write_bytes(data)
    ok(cli("image", "import", str(archive), "--host", "box2"))
    # Loaded on box2, not on box: neither its name nor its id opens an instance on box.
    for image in ("chaton-test/web:offline", image_id):
        line = one_error_line(cli("instance", "add", "webtest", "pad.example.org",
                                  "--image", image))
        # (The test application is local: its tags are looked for on the engine too.)
        assert "host box" in line, line
    # An id made up, a tag nobody loaded: refused before anything is made.
    assert "No image with the id" in one_error_line(cli(
        "instance", "add", "webtest", "pad.example.org", "--image", "sha256:" + "0" * 64,
        "--host", "box2"))
    assert not Instance.objects.exists() and not engine.workloads
    assert not engines[other.name].workloads
    # Not an image archive: one line, nothing recorded.
    archive.write_bytes(b"not a tar")
    assert "refused the image archive" in one_error_line(cli("image", "import", str(archive)))
    assert "Cannot read" in one_error_line(cli("image", "import", str(tmp_path / "none.tar")))


def test_instance_show_prints_local_time_as_the_pages_do(cli, host, engine, settings) -> None:
    import datetime as dt

    ok(cli("instance", "add", "webtest", "pad.example.org"))
    moment = dt.datetime(2026, 7, 14, 21, 30, tzinfo=dt.UTC)  # 23:30 in Paris (summer)
    Deployment.objects.update(created_at=moment)
    settings.TIME_ZONE = "Europe/Paris"
    output = ok(cli("instance", "show", "pad"))
    assert "2026-07-14 23:30" in output and "21:30" not in output


def test_diagram_to_a_file_and_to_standard_output(cli, host, engine, tmp_path: Path) -> None:
    ok(cli("instance", "add", "webtest", "pad.example.org"))
    target = tmp_path / "services.svg"
    assert "Diagram written to" in ok(cli("diagram", "--output", str(target)))
    root = ElementTree.parse(target).getroot()  # noqa: S314 - our own drawing
    assert "pad.example.org" in "".join(root.itertext()) and "box" in "".join(root.itertext())
    assert ok(cli("diagram")).startswith('<?xml version="1.0" encoding="UTF-8"?>')
    line = one_error_line(cli("diagram", "--output", str(tmp_path / "missing" / "x.svg")))
    assert "Cannot write" in line
