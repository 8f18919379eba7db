"""Records are checked when they are made: what cannot be published never reaches a server."""

from __future__ import annotations

import pytest

from chaton.adapters.dns import (
    TXT_CHUNK,
    BadRecord,
    Change,
    DnsError,
    NotOurZone,
    Record,
    TsigRefused,
    Zone,
    ZoneServer,
    check_names,
    join_txt,
    normalize_name,
    slot,
    split_txt,
    use_dns,
)
from chaton.adapters.dns.client import Rfc2136Zone
from chaton.adapters.dns.fake import FakeZone


@pytest.mark.parametrize("name", [
    "not a domain", "exa mple.org", "example..org", "-", "", ".", "exämple.org",
    "bad!name.example.org", "x" * 64 + ".example.org", ("a" * 60 + ".") * 5 + "org",
    "sel/1._domainkey.example.org", "www.*.example.org",
])
def test_a_name_with_illegal_characters_or_lengths_is_a_bad_record(name: str) -> None:
    with pytest.raises(BadRecord) as bad:
        Record(name, "A", 300, ("192.0.2.1",))
    assert isinstance(bad.value, ValueError) and isinstance(bad.value, DnsError)


@pytest.mark.parametrize(("spelled", "name"), [
    ("Example.ORG", "example.org."), ("_dmarc.example.org.", "_dmarc.example.org."),
    ("*.example.org", "*.example.org."),
    ("s1._domainkey.example.org", "s1._domainkey.example.org."),
])
def test_names_are_absolute_and_lower_case(spelled: str, name: str) -> None:
    assert normalize_name(spelled) == name


@pytest.mark.parametrize("ttl", [-1, 2**31, 1.5, "300", True])
def test_a_ttl_out_of_range_is_a_bad_record(ttl: object) -> None:
    with pytest.raises(BadRecord):
        Record("www.example.org.", "A", ttl, ("192.0.2.1",))  # type: ignore[arg-type]


@pytest.mark.parametrize(("type", "value"), [
    ("TXT", "v=spf1 mx -all café"), ("TXT", "line\nbreak"), ("A", "192.0.2.300"),
    ("AAAA", "192.0.2.1"), ("MX", "10 mail"), ("MX", "mail.example.org."),
    ("CNAME", "target"), ("SRV", "0 1 587"), ("CAA", "0 issue"), ("PTR", "x.example.org."),
    ("MX", "10 bad name.example.org."),
    # A value hiding a second one, or a comment, is refused rather than cut short.
    ("A", "192.0.2.1 ; 198.51.100.1"), ("A", "192.0.2.1\n198.51.100.1"),
    ("A", "192.0.2.1 192.0.2.2"), ("CAA", '0 issue "letsencrypt.org" ; evil'),
    ("MX", "10 mail.example.org.\n@ IN NS evil.example.net."), ("A", "192.0.2.1\t"),
])
def test_a_value_that_cannot_be_published_is_a_bad_record(type: str, value: str) -> None:
    with pytest.raises(BadRecord):
        Record("example.org.", type, 300, (value,))


def test_quotes_and_semicolons_inside_a_quoted_value_are_the_value() -> None:
    caa = Record("example.org.", "CAA", 300,
                 ('0 issue "letsencrypt.org; validationmethods=dns-01"',))
    assert caa.values == ('0 issue "letsencrypt.org; validationmethods=dns-01"',)


def test_a_record_spelled_otherwise_is_the_same_record() -> None:
    assert Record("Example.org", "mx", 300, ("20 MX2.example.net.", "10 mail.example.org.",
                                             "10 mail.example.org.")) == \
        Record("example.org.", "MX", 300, ("10 mail.example.org.", "20 mx2.example.net."))
    with pytest.raises(BadRecord):
        Record("www.example.org.", "CNAME", 300, ("a.example.org.", "b.example.org."))
    with pytest.raises(BadRecord):
        Record("www.example.org.", "TXT", 300, "v=spf1 -all")  # type: ignore[arg-type]


def test_a_txt_value_is_split_in_strings_of_255_bytes_and_joined_back() -> None:
    spf = "v=spf1 " + " ".join(f"ip4:198.51.100.{host}" for host in range(25)) + " -all"
    assert len(spf) > 255
    strings = split_txt(spf)
    assert [len(part) for part in strings[:-1]] == [TXT_CHUNK] * (len(strings) - 1)
    assert join_txt(strings) == spf and join_txt(part.encode() for part in strings) == spf
    assert split_txt("") == [""] and split_txt('quote " and \\ slash') == [
        'quote " and \\ slash']


def test_a_change_is_a_replace_with_values_or_a_delete() -> None:
    with pytest.raises(BadRecord):
        Change("upsert", Record("www.example.org.", "A", 300, ("192.0.2.1",)))
    with pytest.raises(BadRecord):
        Change("replace", Record("www.example.org.", "A", 300, ()))
    Change("delete", Record("www.example.org.", "A", 0, ()))


def test_names_outside_the_zone_are_not_ours() -> None:
    assert check_names("example.org", [("WWW.example.org", "a")]) == [
        ("www.example.org.", "A")]
    for name in ("example.net.", "notexample.org.", "org."):
        with pytest.raises(NotOurZone):
            check_names("example.org.", [(name, "A")])


def test_the_server_never_shows_its_secret() -> None:
    server = ZoneServer("example.org.", "127.0.0.1", 53, tsig_name="k.", tsig_secret="c2VjcmV0")
    assert "c2VjcmV0" not in repr(server)


def test_a_fake_zone_refuses_and_fails_like_a_server() -> None:
    zone = FakeZone("example.org.")
    record = Record("www.example.org.", "A", 300, ("192.0.2.1",))
    zone.tsig_refused = True
    assert zone.apply([Change("delete", record)]) == 0  # nothing to send: nothing refused
    with pytest.raises(DnsError):
        zone.apply([Change("replace", record)])
    assert zone.records == {}


def test_both_clients_are_zones_and_anything_else_is_refused_by_name() -> None:
    server = ZoneServer("example.org.", "127.0.0.1", 53)
    assert isinstance(FakeZone("example.org."), Zone) and isinstance(Rfc2136Zone(server), Zone)
    with pytest.raises(TypeError, match="use_dns"), use_dns(object()):  # type: ignore[arg-type]
        pass


def test_the_slot_gives_a_zone_per_server() -> None:
    zones = {"example.org.": FakeZone("example.org."), "example.net.": FakeZone("example.net.")}
    server = ZoneServer("example.net.", "192.0.2.53", 53)
    with use_dns(lambda key: zones[key.zone]):
        assert slot.current(server) is zones["example.net."]
    assert slot.current(server) is None


def test_a_secret_that_is_not_base64_is_a_refused_key() -> None:
    with pytest.raises(TsigRefused):
        Rfc2136Zone(ZoneServer("example.org.", "127.0.0.1", 53, tsig_name="k.",
                               tsig_secret="!!not base64"))
