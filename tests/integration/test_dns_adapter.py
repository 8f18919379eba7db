"""The DNS adapter against a real Knot taking signed updates: what the contract test cannot
say of a fake (messages on the wire, the SOA serial, a restart, keys the server refuses).

Every test starts its own knotd (``knot_updates``), serving ``example.org.`` and
``example.net.`` with a random TSIG key.
"""

from __future__ import annotations

import dataclasses

import dns.message
import dns.query
import pytest

from chaton.adapters.dns import (
    Change,
    DnsUnavailable,
    NotOurZone,
    Record,
    TsigRefused,
    UpdateRefused,
    ZoneServer,
    resolve,
)
from chaton.adapters.dns.client import Rfc2136Zone
from chaton.testing.dns import KnotServer, TsigKey, knot_updates  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def soa_serial(knot: KnotServer, zone: str = "example.org.") -> int:
    answer = dns.query.tcp(dns.message.make_query(zone, "SOA"), "127.0.0.1", port=knot.port,
                           timeout=5)
    return int(answer.answer[0][0].serial)


def many(count: int, zone: str = "example.org.") -> list[Change]:
    """``count`` replaces, one set each, of several types."""
    changes = []
    for index in range(count):
        if index % 3 == 0:
            record = Record(f"host{index}.{zone}", "A", 300, (f"198.51.100.{index % 250}",))
        elif index % 3 == 1:
            record = Record(f"s{index}._domainkey.{zone}", "TXT", 300,
                            ("v=DKIM1; k=rsa; p=" + "A" * 392,))
        else:
            record = Record(f"_imaps._tcp.h{index}.{zone}", "SRV", 300,
                            (f"0 1 993 host{index}.{zone}",))
        changes.append(Change("replace", record))
    return changes


def test_many_changes_go_in_few_messages_and_a_second_apply_in_none(
        knot_updates: KnotServer) -> None:  # noqa: F811
    zone = Rfc2136Zone(knot_updates.zone_server("example.org."))
    changes = many(600)
    assert zone.apply(changes) == 600
    # Batched: far fewer UPDATE messages than sets, and the serial moved once per message.
    assert 1 <= zone.messages_sent <= 10
    serial = soa_serial(knot_updates)
    assert serial == 1 + zone.messages_sent
    assert zone.apply(changes) == 0
    assert zone.messages_sent <= 10 and soa_serial(knot_updates) == serial
    read = zone.read([change.record.key for change in changes])
    assert read == {change.record.key: change.record for change in changes}
    # One set changed among the 600: one message, one set.
    sent = zone.messages_sent
    changes[7] = Change("replace", Record("host7.example.org.", "TXT", 300, ("moved",)))
    changes[6] = Change("delete", changes[6].record)
    assert zone.apply(changes) == 2 and zone.messages_sent == sent + 1


def test_the_updates_survive_a_restart_and_a_server_down_comes_back(
        knot_updates: KnotServer) -> None:  # noqa: F811
    zone = Rfc2136Zone(knot_updates.zone_server("example.org.", timeout=2))
    dkim = Record("s1._domainkey.example.org.", "TXT", 300, ("v=DKIM1; k=ed25519; p=AAAA",))
    zone.apply([Change("replace", dkim)])
    knot_updates.stop()
    with pytest.raises(DnsUnavailable) as down:
        zone.apply([Change("delete", dkim)])
    assert f"127.0.0.1:{knot_updates.port}" in str(down.value)
    with pytest.raises(DnsUnavailable):
        resolve(dkim.name, "TXT", server=("127.0.0.1", knot_updates.port), timeout=0.5)
    knot_updates.start()
    assert zone.read([dkim.key])[dkim.key] == dkim
    assert zone.apply([Change("delete", dkim)]) == 1
    assert zone.read([dkim.key])[dkim.key] is None


def test_only_the_servers_key_may_update(knot_updates: KnotServer) -> None:  # noqa: F811
    record = Change("replace", Record("www.example.org.", "A", 300, ("192.0.2.66",)))
    serial = soa_serial(knot_updates)
    wrong_secret = knot_updates.zone_server("example.org.", tsig=TsigKey.random())
    unknown_name = knot_updates.zone_server("example.org.", tsig=TsigKey.random("intruder."))
    wrong_algorithm = dataclasses.replace(knot_updates.zone_server("example.org."),
                                          tsig_algorithm="hmac-sha512")
    for server in (wrong_secret, unknown_name, wrong_algorithm):
        with pytest.raises(TsigRefused) as refused:
            Rfc2136Zone(server).apply([record])
        assert "refused the TSIG key" in str(refused.value)
        assert server.tsig_secret not in str(refused.value)
    unsigned = ZoneServer("example.org.", "127.0.0.1", knot_updates.port)
    with pytest.raises(UpdateRefused) as refused_update:
        Rfc2136Zone(unsigned).apply([record])
    assert "no TSIG key" in str(refused_update.value)
    assert soa_serial(knot_updates) == serial
    assert resolve("www.example.org.", "A", server=("127.0.0.1", knot_updates.port)) is None


def test_a_zone_the_server_does_not_serve_is_not_ours(knot_updates: KnotServer) -> None:  # noqa: F811
    zone = Rfc2136Zone(knot_updates.zone_server("example.com."))
    record = Record("www.example.com.", "A", 300, ("192.0.2.1",))
    with pytest.raises(NotOurZone):
        zone.read([record.key])
    with pytest.raises(NotOurZone):
        zone.apply([Change("replace", record)])
    assert zone.messages_sent == 0


def test_the_same_key_updates_each_zone_of_the_server_and_only_its_names(
        knot_updates: KnotServer) -> None:  # noqa: F811
    ours = Rfc2136Zone(knot_updates.zone_server("example.org."))
    dkim_zone = Rfc2136Zone(knot_updates.zone_server("example.net."))
    target = Record("s1.example.net.", "TXT", 300, ("v=DKIM1; k=rsa; p=MIIB",))
    pointer = Record("s1._domainkey.example.org.", "CNAME", 300, ("s1.example.net.",))
    assert dkim_zone.apply([Change("replace", target)]) == 1
    assert ours.apply([Change("replace", pointer)]) == 1
    with pytest.raises(NotOurZone):
        ours.apply([Change("replace", target)])
    server = ("127.0.0.1", knot_updates.port)
    # An authoritative server does not follow the CNAME out of its zone: ask for it itself.
    assert resolve(pointer.name, "CNAME", server=server) == pointer
    assert resolve(target.name, "TXT", server=server) == target
    assert resolve("nothing.example.org", "TXT", server=server) is None
    assert resolve("example.org", "TXT", server=server) is None


def test_a_set_changed_with_knotc_is_read_as_it_is_and_put_back(
        knot_updates: KnotServer) -> None:  # noqa: F811
    zone = Rfc2136Zone(knot_updates.zone_server("example.org."))
    spf = Record("example.org.", "TXT", 300, ("v=spf1 mx -all",))
    zone.apply([Change("replace", spf)])
    # An operator at the server, outside any key: a laxer SPF and a second string.
    knot_updates.change_by_hand("example.org.", "example.org.", "TXT", 60,
                                ['"v=spf1 +all"', '"google-site-verification=abc"'])
    assert zone.read([spf.key])[spf.key] == Record(
        "example.org.", "TXT", 60, ("google-site-verification=abc", "v=spf1 +all"))
    serial = soa_serial(knot_updates)
    assert zone.apply([Change("replace", spf)]) == 1
    assert zone.read([spf.key])[spf.key] == spf and soa_serial(knot_updates) == serial + 1


def test_a_server_named_by_its_host_name_is_reached_and_an_unknown_name_is_unavailable(
        knot_updates: KnotServer) -> None:  # noqa: F811
    by_name = dataclasses.replace(knot_updates.zone_server("example.org."), host="localhost")
    record = Record("www.example.org.", "A", 300, ("192.0.2.80",))
    assert Rfc2136Zone(by_name).apply([Change("replace", record)]) == 1
    assert resolve(record.name, "A", server=("localhost", knot_updates.port)) == record
    nowhere = dataclasses.replace(by_name, host="nowhere.invalid")
    with pytest.raises(DnsUnavailable, match="cannot be found"):
        Rfc2136Zone(nowhere).apply([Change("delete", record)])
    with pytest.raises(DnsUnavailable, match="cannot be found"):
        resolve(record.name, "A", server=("nowhere.invalid", 53))
