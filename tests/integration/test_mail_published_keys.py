"""A revealed key is fetched from Chaton's own server at its public URL, as the world would,
and listed by ``chaton mail dkim published``; a server that does not answer is said."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from chaton.adapters.dns import use_dns
from chaton.adapters.dns.fake import FakeZone
from chaton.adapters.opendkim import use_signer
from chaton.adapters.opendkim.fake import FakeSigner
from chaton.cli.app import app
from chaton.core import clock
from chaton.core.servers import free_port
from chaton.mail import actions, published
from chaton.mail.models import DkimKey, KeyState

pytestmark = pytest.mark.django_db(transaction=True)


def test_published_keys_are_reachable_at_their_url(live_server, settings):
    with use_dns(FakeZone("example.org.")), use_signer(FakeSigner()):
        try:
            zone = actions.do_create_zone("example.org", acting_user=None, mode="rfc2136",
                                          server_host="127.0.0.1", server_port=5353)
            domain = actions.do_add_domain("example.org", acting_user=None, zone=zone)
            actions.do_reconcile_keys(domain)
            clock.travel(dt.timedelta(hours=5))
            actions.do_reconcile_keys(domain)
            actions.do_rotate(domain, acting_user=None, emergency=True)
            (old,) = DkimKey.objects.filter(state=KeyState.RETIRED)
            actions.do_reconcile_keys(domain)  # the record goes
            # Test set-up: the members' decision, as the operation's tests make it.
            type(domain).objects.filter(pk=domain.pk).update(publish_retired_keys=True)
            actions.do_reconcile_keys(domain)
        finally:
            clock.travel(dt.timedelta(0))
    old.refresh_from_db()
    assert old.state == KeyState.REVEALED
    settings.CHATON.public_url = live_server.url
    (row,) = published.check(published.published_keys())
    assert row.reachable and row.url.endswith(f"/.well-known/dkim/{old.published_name}.pem")
    result = CliRunner().invoke(app, ["mail", "dkim", "published"])
    assert result.exit_code == 0 and "reachable" in result.output
    settings.CHATON.public_url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["mail", "dkim", "published", "example.org"])
    assert result.exit_code == 1 and "NOT reachable" in result.output
