"""Monitoring against real servers: an instance on the test dockerd behind Caddy with pebble's
certificates, a real SMTP server and a webhook receiver for the alerts, the session's slapd.

Faults: the instance's container stopped → an incident after three failures, exactly one
alert mail and one webhook post, resolved when it is back with its duration; the webhook down
→ alerts retried, probes keep running; a certificate five days from expiry → a warning; the
directory and a Docker engine watched for real. Nothing here skips.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from pytest_django import Settings

from chaton.adapters.caddy.server import ManagedCaddy
from chaton.adapters.slapd import ManagedSlapd
from chaton.core import clock
from chaton.core.servers import free_port
from chaton.directory import actions as directory_actions
from chaton.monitoring import cycle, derive
from chaton.monitoring.engine import ProbeSpec, real_engine
from chaton.monitoring.models import Incident, Probe, State
from chaton.notifications import outbox
from chaton.notifications.models import Notification
from chaton.services import actions
from chaton.services.models import Host
from chaton.testing.acme import Pebble, wait_for_https
from chaton.testing.docker import TemporaryDockerd
from chaton.testing.pytest_plugin import SmtpCatcher
from chaton.testing.webhook import WebhookReceiver, webhook_receiver

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("english")]


@pytest.fixture(autouse=True)
def clock_back() -> Iterator[None]:
    yield
    clock.travel(dt.timedelta(0))


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with webhook_receiver(free_port()) as receiver:
        yield receiver


@pytest.fixture
def alerted(settings: Settings, monkeypatch: pytest.MonkeyPatch, smtp_catcher: SmtpCatcher,
            webhook: WebhookReceiver, directory: object) -> tuple[SmtpCatcher, WebhookReceiver]:
    """Mail to the SMTP catcher, the team channel to the webhook receiver, a tech group of one."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_catcher.port
    settings.EMAIL_TIMEOUT = 5
    settings.LANGUAGE_CODE = "en"
    monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url", webhook.url)
    admin = directory_actions.do_create_account("wren", acting_user=None, display_name="Wren",
                                                email="wren@example.org", is_admin=True)
    group = directory_actions.do_create_group("tech", acting_user=None)
    directory_actions.do_add_to_group(group, admin, acting_user=None)
    return smtp_catcher, webhook


@pytest.fixture
def host(docker_engine: TemporaryDockerd, test_catalog: Path, caddy: ManagedCaddy) -> Host:
    return actions.do_create_host("local", docker_engine.url, acting_user=None,
                                  address="127.0.0.1", is_default=True)


def tick(**kwargs: object) -> cycle.CycleReport:
    clock.travel(clock._offset + dt.timedelta(minutes=1))
    return cycle.run_cycle(every=True, **kwargs)  # type: ignore[arg-type]


def test_a_stopped_service_opens_one_incident_one_mail_one_post_and_resolves_when_back(
        host: Host, pebble: Pebble, docker_engine: TemporaryDockerd,
        alerted: tuple[SmtpCatcher, WebhookReceiver], monkeypatch: pytest.MonkeyPatch) -> None:
    catcher, webhook = alerted
    monkeypatch.setattr(django_settings.CHATON.monitoring, "ca_file", str(pebble.roots_path()))
    instance = actions.do_create_instance("webtest", "pads-watch.chaton.test", host,
                                          acting_user=None)
    wait_for_https(instance.domain, django_settings.CHATON.proxy.https_port,
                   roots=pebble.roots_path(), expect=b"chaton-test web")
    derive.reconcile()
    # Only the instance's probes here: the directory and Chaton's web are other tests'.
    Probe.objects.exclude(instance=instance).update(enabled=False)
    watched = set(Probe.objects.filter(enabled=True).values_list("key", flat=True))
    assert watched == {f"instance:{instance.slug}:https", f"instance:{instance.slug}:probe-1"}
    tick()
    https = Probe.objects.get(key=f"instance:{instance.slug}:https")
    assert https.state == State.UP, https.last_error
    assert https.cert_expires_at is not None and https.cert_expires_at > clock.now()

    (container,) = docker_engine.api.containers(filters={
        "label": [f"org.chaton.instance={instance.slug}", "org.chaton.role=app"]})
    docker_engine.api.stop(container["Id"], timeout=2)
    tick()
    tick()
    assert not Incident.objects.exists()
    report = tick()
    assert sorted(report.opened) == sorted(watched)
    https.refresh_from_db()
    assert https.state == State.DOWN and "[STATUS]" in https.last_error
    # Two probes of one service: two incidents, each alerted once; nothing more while open.
    tick()
    mails = [message for message in catcher.messages if b"Down:" in message.content]
    assert len(mails) == 2 and len(webhook.received) == 2
    assert mails[0].recipients == ["wren@example.org"]

    docker_engine.api.start(container["Id"])
    wait_for_https(instance.domain, django_settings.CHATON.proxy.https_port,
                   roots=pebble.roots_path(), expect=b"chaton-test web")
    tick()
    report = tick()
    assert sorted(report.resolved) == sorted(watched)
    incident = Incident.objects.get(probe=https)
    assert incident.resolved_at is not None
    assert incident.duration is not None and incident.duration >= dt.timedelta(minutes=3)
    resolved = [message for message in catcher.messages if b"Resolved:" in message.content]
    assert len(resolved) == 2 and len(webhook.received) == 4
    # Opened at the third failure, resolved at the second success: three minutes later.
    assert b"(after 3 min" in resolved[0].content


def test_a_webhook_down_is_retried_and_probing_goes_on(
        alerted: tuple[SmtpCatcher, WebhookReceiver], monkeypatch: pytest.MonkeyPatch) -> None:
    catcher, webhook = alerted
    dead = f"http://127.0.0.1:{free_port()}/hooks/down"
    monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url", dead)
    Probe.objects.create(key="custom:closed", name="Closed port", kind="tcp",
                         target=f"127.0.0.1:{free_port()}", service="Closed", timeout_seconds=2)
    for _ in range(3):
        tick(reconcile=False)
    assert Incident.objects.filter(resolved_at=None).count() == 1
    post = Notification.objects.get(kind="webhook")
    assert post.sent_at is None and post.attempts == 1 and post.last_error
    for _ in range(3):
        tick(reconcile=False)
    assert Probe.objects.get().results.count() == 6  # probing went on
    monkeypatch.setattr(django_settings.CHATON.governance, "webhook_url", webhook.url)
    clock.travel(clock._offset + dt.timedelta(minutes=5))
    outbox.drain()
    assert len(webhook.received) == 1 and "Down: Closed" in webhook.received[0].body["text"]
    assert len([message for message in catcher.messages if b"Down:" in message.content]) == 1


def _short_lived_tls_server(tmp_path: Path, days: int) -> tuple[int, Path, threading.Event]:
    """Serve TLS on a free port with a certificate that expires in ``days``; return the port,
    the CA to trust and an event that stops it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soon.chaton.test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("soon.chaton.test")]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "soon.pem", tmp_path / "soon.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(connection, server_side=True) as wrapped:
                    wrapped.recv(1)
            except OSError:
                pass
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], cert_path, stop


def test_a_certificate_five_days_from_expiry_puts_its_probe_in_warning(
        tmp_path: Path, alerted: tuple[SmtpCatcher, WebhookReceiver]) -> None:
    port, ca_file, stop = _short_lived_tls_server(tmp_path, days=5)
    try:
        Probe.objects.create(key="custom:soon", name="Soon", kind="tls",
                             target=f"127.0.0.1:{port}", service="Soon",
                             options={"server_name": "soon.chaton.test",
                                      "ca_file": str(ca_file)})
        tick(reconcile=False)
    finally:
        stop.set()
    probe = Probe.objects.get()
    assert probe.state == State.WARNING, probe.last_error
    assert "expires in 4 day" in probe.last_error or "expires in 5 day" in probe.last_error
    assert not Incident.objects.exists()


def test_the_directory_is_watched_with_a_bind_and_a_base_search(
        slapd: ManagedSlapd, monkeypatch: pytest.MonkeyPatch) -> None:
    ldap = django_settings.CHATON.ldap
    monkeypatch.setattr(ldap, "managed", False)  # an existing directory, Chaton's account
    monkeypatch.setattr(ldap, "url", slapd.url)
    monkeypatch.setattr(ldap, "bind_dn", slapd.admin_dn)
    monkeypatch.setattr(ldap, "bind_password", slapd.admin_password)
    monkeypatch.setattr(ldap, "bind_password_file", "")
    monkeypatch.setattr(ldap, "base_dn", "dc=chaton,dc=test")
    desired = derive.directory_probe()
    probe = Probe.objects.create(key=desired.key, **desired.values())
    assert "password" not in probe.options  # read at run time, never stored
    spec = cycle.spec_of(probe)
    wrong = ProbeSpec("wrong", "ldap", slapd.url,
                      options={**spec.options, "password": "not the password"}, timeout=5)
    engine = real_engine()
    try:
        results = engine.run([spec, wrong])
    finally:
        engine.close()
    assert results[0].ok, results[0].error
    assert not results[1].ok and "credentials" in results[1].error.lower()
    assert "not the password" not in results[1].error


def test_a_hosts_docker_engine_is_pinged(docker_engine: TemporaryDockerd) -> None:
    from chaton.monitoring import checks

    host = actions.do_create_host("local", docker_engine.url, acting_user=None,
                                  address="127.0.0.1", is_default=True)
    derive.reconcile()
    probe = Probe.objects.get(key="host:local:docker")
    result, _warning = checks.run_computed([probe])[probe.key]
    assert result.ok, result.error
    gone = Host.objects.create(name="gone", docker_url=f"tcp://127.0.0.1:{free_port()}")
    derive.reconcile()
    probe = Probe.objects.get(key="host:gone:docker")
    result, _warning = checks.run_computed([probe])[probe.key]
    assert not result.ok and "does not answer" in result.error
    assert host.pk and gone.pk
