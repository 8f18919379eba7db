"""The DNS adapter's contract: the same assertions on the fake and on the real client.

``FakeZone`` stands for a zone in every fast test of the mail app; here it must answer as
:class:`~chaton.adapters.dns.client.Rfc2136Zone` does against a real Knot taking signed
updates: every record type Chaton publishes replaced, read back and deleted; a long TXT
round-trips; a second apply sends nothing; a name of another zone, a refused key and a
server down raise the same errors and change nothing; a record changed by hand is read
back as it is, and put back.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.message
import dns.query
import dns.rcode
import dns.tsig
import dns.update
import pytest

from chaton.adapters.dns import (
    Change,
    DnsUnavailable,
    NotOurZone,
    Record,
    TsigRefused,
    UpdateRefused,
    Zone,
    resolve,
)
from chaton.adapters.dns.client import Rfc2136Zone
from chaton.adapters.dns.fake import FakeZone
from chaton.testing.dns import (  # noqa: F401 - knot_updates: the fixture
    EXAMPLE_ZONE,
    KnotServer,
    TsigKey,
    knot_updates,
    records_of_zone,
)

SIDE = [pytest.param("fake"), pytest.param("real", marks=pytest.mark.integration)]

#: An SPF record of more than 255 characters: two strings on the wire.
LONG_SPF = ("v=spf1 mx " + " ".join(f"ip4:192.0.2.{host}" for host in range(1, 30))
            + " " + " ".join(f"ip6:2001:db8::{host:x}" for host in range(1, 10)) + " -all")

EVERY_TYPE = [
    Record("www.example.org.", "A", 300, ("192.0.2.10", "192.0.2.11")),
    Record("www.example.org.", "AAAA", 300, ("2001:db8::10",)),
    Record("example.org.", "MX", 3600, ("10 mail.example.org.", "20 mx2.example.net.")),
    Record("mail.example.org.", "A", 300, ("192.0.2.25",)),
    Record("example.org.", "TXT", 300, (LONG_SPF,)),
    Record("_dmarc.example.org.", "TXT", 300, ("v=DMARC1; p=quarantine; "
                                               "rua=mailto:dmarc@example.org",)),
    Record("autoconfig.example.org.", "CNAME", 300, ("mail.example.org.",)),
    Record("_submissions._tcp.example.org.", "SRV", 300, ("0 1 465 mail.example.org.",)),
    Record("example.org.", "CAA", 300, ('0 issue "letsencrypt.org"',
                                        '0 iodef "mailto:hostmaster@example.org"')),
    Record("delegated.example.org.", "NS", 300, ("ns1.example.net.",)),
]


@dataclass
class Side:
    """A zone client of ``example.org.`` and what a test does to its server behind its back."""

    zone: Zone
    knot: KnotServer | None = None
    fake: FakeZone | None = None

    def serial(self) -> int:
        """The zone's SOA serial (the fake counts its changes)."""
        if self.fake is not None:
            return self.fake.serial
        assert self.knot is not None
        answer = dns.query.tcp(dns.message.make_query("example.org.", "SOA"), "127.0.0.1",
                               port=self.knot.port, timeout=5)
        return int(answer.answer[0][0].serial)

    def messages(self) -> int:
        return self.zone.messages_sent  # type: ignore[attr-defined, no-any-return]

    def refuse_key(self) -> Zone:
        """Return a client whose key the server refuses."""
        if self.fake is not None:
            self.fake.tsig_refused = True
            return self.fake
        assert self.knot is not None
        return Rfc2136Zone(self.knot.zone_server("example.org.", tsig=TsigKey.random()))

    def stop(self) -> None:
        """Take the server down."""
        if self.fake is not None:
            self.fake.down = True
        else:
            assert self.knot is not None
            self.knot.stop()

    def change_by_hand(self, record: Record) -> None:
        """Replace a set outside the adapter (a person at the provider's form, knotc, nsupdate)."""
        if self.fake is not None:
            self.fake.records[record.key] = record
            return
        assert self.knot is not None and self.knot.tsig is not None
        key = dns.tsig.Key(self.knot.tsig.name, self.knot.tsig.secret)
        update = dns.update.UpdateMessage("example.org.", keyring=key, keyname=key.name)
        values = [f'"{value}"' for value in record.values] if record.type == "TXT" \
            else record.values
        update.replace(record.name, record.ttl, record.type, *values)
        response = dns.query.tcp(update, "127.0.0.1", port=self.knot.port, timeout=5)
        assert response.rcode() == dns.rcode.NOERROR


@pytest.fixture(params=SIDE)
def side(request: pytest.FixtureRequest) -> Side:
    if request.param == "fake":
        fake = FakeZone("example.org.", records_of_zone(EXAMPLE_ZONE))
        return Side(zone=fake, fake=fake)
    knot: KnotServer = request.getfixturevalue("knot_updates")
    return Side(zone=Rfc2136Zone(knot.zone_server("example.org.")), knot=knot)


def replace(*records: Record) -> list[Change]:
    return [Change("replace", record) for record in records]


def test_every_type_is_replaced_read_back_and_deleted(side: Side) -> None:
    zone = side.zone
    # What the zone holds at first (the fake is filled from the same zone file).
    assert zone.read([("www.example.org.", "A"), ("example.org.", "MX"),
                      ("mail.example.org.", "A"), ("example.org.", "TXT")]) == {
        ("www.example.org.", "A"): None,
        ("example.org.", "MX"): Record("example.org.", "MX", 300, ("10 mail.example.org.",)),
        ("mail.example.org.", "A"): Record("mail.example.org.", "A", 300, ("127.0.0.2",)),
        ("example.org.", "TXT"): None}
    assert zone.apply(replace(*EVERY_TYPE)) == len(EVERY_TYPE)
    assert zone.read([record.key for record in EVERY_TYPE]) == {
        record.key: record for record in EVERY_TYPE}
    deleted = [Change("delete", Record("www.example.org.", "A", 0, ())),
               Change("delete", Record("example.org.", "CAA", 0, ()))]
    assert zone.apply(deleted) == 2
    after = zone.read([("www.example.org.", "A"), ("www.example.org.", "AAAA"),
                       ("example.org.", "CAA"), ("example.org.", "MX")])
    assert after[("www.example.org.", "A")] is None and after[("example.org.", "CAA")] is None
    assert after[("www.example.org.", "AAAA")] == EVERY_TYPE[1]
    assert after[("example.org.", "MX")] == EVERY_TYPE[2]
    # Deleting what is not there changes nothing.
    assert zone.apply(deleted) == 0


def test_a_txt_longer_than_255_characters_round_trips_as_one_value(side: Side) -> None:
    assert len(LONG_SPF) > 255
    spf = Record("example.org.", "TXT", 300, (LONG_SPF,))
    side.zone.apply(replace(spf))
    assert side.zone.read([spf.key])[spf.key] == spf
    if side.knot is not None:  # and a resolver-side query joins the strings too
        assert resolve("example.org", "txt", server=("127.0.0.1", side.knot.port)) == spf


def test_a_txt_value_is_stored_as_it_is_quotes_and_all(side: Side) -> None:
    """A value cannot smuggle another string, record or comment: it is bytes on the wire."""
    tricky = Record("_tricky.example.org.", "TXT", 300, (
        'v=spf1 -all" "include:evil.example.net', "back\\slash; and a semicolon", "",
        "( parentheses ) @ IN NS evil.example.net."))
    assert side.zone.apply(replace(tricky)) == 1
    assert side.zone.read([tricky.key])[tricky.key] == tricky
    assert side.zone.read([("_tricky.example.org.", "NS")]) == {
        ("_tricky.example.org.", "NS"): None}


def test_a_replace_makes_the_set_exactly_the_record(side: Side) -> None:
    side.zone.apply(replace(Record("example.org.", "MX", 300, ("10 old.example.org.",
                                                                 "20 mail.example.org."))))
    wanted = Record("example.org.", "MX", 600, ("10 mail.example.org.",))
    assert side.zone.apply(replace(wanted)) == 1
    assert side.zone.read([wanted.key])[wanted.key] == wanted
    # Only the TTL differs: that is a change too.
    longer = Record("example.org.", "MX", 3600, ("10 mail.example.org.",))
    assert side.zone.apply(replace(longer)) == 1
    assert side.zone.read([longer.key])[longer.key] == longer


def test_a_second_apply_sends_nothing(side: Side) -> None:
    gone = Change("delete", Record("gone.example.org.", "TXT", 0, ()))
    changes = [*replace(*EVERY_TYPE), gone]
    assert side.zone.apply(changes) == len(EVERY_TYPE)
    serial, messages = side.serial(), side.messages()
    assert side.zone.apply(changes) == 0
    # Spelled differently, the same records are the same.
    assert side.zone.apply(replace(Record("WWW.Example.org", "a", 300,
                                          ("192.0.2.11", "192.0.2.10")))) == 0
    assert (side.serial(), side.messages()) == (serial, messages)


def test_a_name_of_another_zone_is_refused_before_anything_is_sent(side: Side) -> None:
    ours = Record("ok.example.org.", "A", 300, ("192.0.2.1",))
    theirs = Record("www.example.net.", "A", 300, ("192.0.2.1",))
    lookalike = Record("www.notexample.org.", "A", 300, ("192.0.2.1",))
    serial, messages = side.serial(), side.messages()
    for foreign in (theirs, lookalike):
        with pytest.raises(NotOurZone) as refused:
            side.zone.apply(replace(ours, foreign))
        assert isinstance(refused.value, ValueError) and foreign.name in str(refused.value)
        with pytest.raises(NotOurZone):
            side.zone.read([foreign.key])
    assert (side.serial(), side.messages()) == (serial, messages)
    assert side.zone.read([ours.key])[ours.key] is None


def test_a_refused_key_is_a_clear_error_and_changes_nothing(side: Side) -> None:
    before = Record("example.org.", "TXT", 300, ("v=spf1 mx -all",))
    side.zone.apply(replace(before))
    serial = side.serial()
    refused = side.refuse_key()
    with pytest.raises(TsigRefused) as error:
        refused.apply(replace(Record("example.org.", "TXT", 300, ("v=spf1 +all",))))
    assert "refused the TSIG key" in str(error.value)
    assert side.serial() == serial
    assert side.zone.read([before.key])[before.key] == before


def test_a_server_down_is_dns_unavailable(side: Side) -> None:
    side.stop()
    record = Record("www.example.org.", "A", 300, ("192.0.2.1",))
    with pytest.raises(DnsUnavailable) as down:
        side.zone.apply(replace(record))
    assert isinstance(down.value, ConnectionError)
    with pytest.raises(DnsUnavailable):
        side.zone.read([record.key])


def test_a_record_changed_by_hand_is_read_as_it_is_and_put_back(side: Side) -> None:
    wanted = Record("_dmarc.example.org.", "TXT", 300, ("v=DMARC1; p=reject",))
    side.zone.apply(replace(wanted))
    by_hand = Record("_dmarc.example.org.", "TXT", 60, ("v=DMARC1; p=none",))
    side.change_by_hand(by_hand)
    assert side.zone.read([wanted.key])[wanted.key] == by_hand
    assert side.zone.apply(replace(wanted)) == 1
    assert side.zone.read([wanted.key])[wanted.key] == wanted


def test_a_change_the_server_may_not_make_is_an_error_not_a_silent_skip(side: Side) -> None:
    """RFC 2136 §3.4.2: a server answers NOERROR and skips a CNAME beside other records, a
    record beside a CNAME, the removal of the zone's own NS set."""
    address = Record("x.example.org.", "A", 300, ("192.0.2.1",))
    alias = Record("alias.example.org.", "CNAME", 300, ("mail.example.org.",))
    assert side.zone.apply(replace(address, alias)) == 2
    fine = Record("fine.example.org.", "TXT", 300, ("applied",))
    for change in (Change("replace", Record("x.example.org.", "CNAME", 300,
                                            ("mail.example.org.",))),
                   Change("replace", Record("alias.example.org.", "TXT", 300, ("beside",))),
                   Change("delete", Record("example.org.", "NS", 0, ()))):
        with pytest.raises(UpdateRefused) as refused:
            side.zone.apply([Change("replace", fine), change])
        assert f"{change.record.name} {change.record.type}" in str(refused.value)
        now = side.zone.read([change.record.key])[change.record.key]
        assert now is not None if change.action == "delete" else now != change.record
    # What could be made was made, and applying again says the same.
    assert side.zone.read([fine.key])[fine.key] == fine
    assert side.zone.read([address.key, alias.key]) == {address.key: address, alias.key: alias}


def test_the_last_change_of_a_set_wins(side: Side) -> None:
    first = Record("www.example.org.", "A", 300, ("192.0.2.1",))
    second = Record("www.example.org.", "A", 300, ("192.0.2.2",))
    assert side.zone.apply(replace(first, second)) == 1
    assert side.zone.read([first.key])[first.key] == second
    assert side.zone.apply([Change("replace", first),
                            Change("delete", Record(first.name, "A", 0, ()))]) == 1
    assert side.zone.read([first.key])[first.key] is None

