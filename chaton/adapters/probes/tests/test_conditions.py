"""The condition language (fast tier, no network): what parses, what is refused and why,
and how a failing condition reads."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaton.adapters.probes import (
    BadCondition,
    BadSpec,
    ProbeError,
    ProbeSpec,
    check_conditions,
    format_duration_ms,
    parse_condition,
    parse_conditions,
    parse_duration_ms,
    split_host_port,
    validate_spec,
)

HOUR_MS = 3_600_000.0


@pytest.mark.parametrize(("text", "context"), [
    ("[STATUS] == 200", {"STATUS": 200}),
    ("[STATUS] != 500", {"STATUS": 200}),
    ("[STATUS] < 400", {"STATUS": 302}),
    ("[STATUS] <= 400", {"STATUS": 400}),
    ("[STATUS] >= 200", {"STATUS": 200}),
    ("[STATUS]==200", {"STATUS": 200}),
    ("[status] == 200", {"STATUS": 200}),
    ("[BODY] contains pad", {"BODY": "Etherpad: a pad for all"}),
    ("[BODY] not contains error", {"BODY": "all good"}),
    ('[BODY] == "ok"', {"BODY": "ok"}),
    ("[BODY] == x", {"BODY": "x"}),
    ("[BODY] == pat(*ready*)", {"BODY": "server ready now"}),
    ("[RESPONSE_TIME] < 500", {"RESPONSE_TIME": 499.9}),
    ("[RESPONSE_TIME] < 2s", {"RESPONSE_TIME": 1500.0}),
    ("[CERTIFICATE_EXPIRATION] > 240h", {"CERTIFICATE_EXPIRATION": 241 * HOUR_MS}),
    ("[CERTIFICATE_EXPIRATION] > 7d", {"CERTIFICATE_EXPIRATION": 8 * 24 * HOUR_MS}),
    ("[CERTIFICATE_EXPIRATION] > 30m", {"CERTIFICATE_EXPIRATION": HOUR_MS}),
    ("[CONNECTED] == true", {"CONNECTED": True}),
    ("[CONNECTED] == FALSE", {"CONNECTED": False}),
    ("[DNS_RCODE] == NOERROR", {"DNS_RCODE": "NOERROR"}),
    ("[DNS_RCODE] == nxdomain", {"DNS_RCODE": "NXDOMAIN"}),
    ("[IP] == 127.0.0.1", {"IP": "127.0.0.1"}),
    ("[STATUS] == any(200, 204)", {"STATUS": 204}),
    ("[BODY] contains any(pad, calc)", {"BODY": "calc"}),
])
def test_a_holding_condition_gives_no_failure(text: str, context: dict[str, object]) -> None:
    assert check_conditions([text], context) is None


@pytest.mark.parametrize(("text", "context", "reading"), [
    ("[STATUS] == 200", {"STATUS": 503}, "[STATUS] (503) == 200"),
    ("[BODY] contains pad", {"BODY": "Bad gateway"}, "[BODY] (Bad gateway) contains pad"),
    ("[RESPONSE_TIME] < 500", {"RESPONSE_TIME": 812.4}, "[RESPONSE_TIME] (812) < 500"),
    ("[CERTIFICATE_EXPIRATION] > 240h", {"CERTIFICATE_EXPIRATION": 5 * 24 * HOUR_MS},
     "[CERTIFICATE_EXPIRATION] (5d) > 240h"),
    ("[CONNECTED] == true", {"CONNECTED": False}, "[CONNECTED] (false) == true"),
    ("[DNS_RCODE] == NOERROR", {"DNS_RCODE": "NXDOMAIN"}, "[DNS_RCODE] (NXDOMAIN) == NOERROR"),
    ("[STATUS] == 200", {}, "[STATUS] (n/a) == 200"),
    ("[STATUS] == any(200, 204)", {"STATUS": 500}, "[STATUS] (500) == any(200, 204)"),
])
def test_a_failing_condition_reads_with_the_value_found(text: str, context: dict[str, object],
                                                          reading: str) -> None:
    assert check_conditions([text], context) == reading


def test_the_first_failing_condition_is_the_one_reported() -> None:
    conditions = ["[STATUS] == 200", "[BODY] contains pad", "[RESPONSE_TIME] < 10"]
    assert check_conditions(conditions, {"STATUS": 200, "BODY": "no", "RESPONSE_TIME": 50}) \
        == "[BODY] (no) contains pad"


def test_a_long_body_is_shortened_in_the_reading() -> None:
    failure = check_conditions(["[BODY] contains pad"], {"BODY": "x" * 5000})
    assert failure is not None and len(failure) < 80 and "…" in failure


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("   ", "empty"),
    ("STATUS == 200", "starts with a placeholder"),
    ("[STATUS == 200", "']' is missing"),
    ("[STATE] == up", "[STATE] is not a placeholder"),
    ("[STATUS] = 200", "expected an operator"),
    ("[STATUS] 200", "expected an operator"),
    ("[STATUS] ==", "missing"),
    ("[STATUS] == two hundred", "whole number"),
    ("[STATUS] contains 2", "[STATUS] takes"),
    ("[BODY] < 3", "[BODY] takes"),
    ("[RESPONSE_TIME] < fast", "duration"),
    ("[CERTIFICATE_EXPIRATION] > 10y", "duration"),
    ("[CONNECTED] == yes", "true or false"),
    ("[DNS_RCODE] == FINE", "DNS response code"),
    ("[BODY]contains pad", "expected an operator"),
    ("[STATUS] < any(200, 300)", "any(…)"),
    ("[STATUS] == pat(2*)", "pat(…)"),
    ("[BODY] == any()", "at least one"),
])
def test_a_condition_that_does_not_parse_is_refused_with_a_reason(text: str,
                                                                 message: str) -> None:
    with pytest.raises(BadCondition, match=message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        parse_condition(text)


def test_bad_condition_is_a_value_error_and_a_probe_error() -> None:
    with pytest.raises(ValueError):
        parse_condition("[NOPE] == 1")
    with pytest.raises(ProbeError):
        parse_condition("[NOPE] == 1")


def test_a_placeholder_the_kind_never_fills_is_refused() -> None:
    with pytest.raises(BadCondition, match=r"\[STATUS\] has no value for a tcp probe"):
        parse_conditions(["[STATUS] == 200"], "tcp")
    assert parse_conditions(["[CONNECTED] == true"], "tcp")[0].placeholder == "CONNECTED"


@pytest.mark.parametrize(("text", "milliseconds"), [
    ("500", 500.0), ("500ms", 500.0), ("30s", 30_000.0), ("30m", 1_800_000.0),
    ("240h", 240 * HOUR_MS), ("7d", 7 * 24 * HOUR_MS), ("1.5s", 1500.0),
])
def test_durations(text: str, milliseconds: float) -> None:
    assert parse_duration_ms(text) == milliseconds


def test_durations_read_shortly() -> None:
    assert format_duration_ms(5 * 24 * HOUR_MS + 3 * HOUR_MS) == "5d3h"
    assert format_duration_ms(90 * 60_000) == "1h30m"
    assert format_duration_ms(59_000) == "59s"
    assert format_duration_ms(-2 * HOUR_MS) == "-2h"


@given(st.text(max_size=60))
def test_any_text_parses_or_is_refused_as_a_bad_condition(text: str) -> None:
    try:
        parse_condition(text)
    except BadCondition:
        pass


@given(st.integers(min_value=100, max_value=599), st.integers(min_value=100, max_value=599))
def test_status_equality_matches_the_integers(expected: int, actual: int) -> None:
    failure = check_conditions([f"[STATUS] == {expected}"], {"STATUS": actual})
    assert (failure is None) == (expected == actual)
    if failure is not None:
        assert failure == f"[STATUS] ({actual}) == {expected}"


@pytest.mark.parametrize(("spec", "message"), [
    (ProbeSpec("k", "ping", "x"), "not a kind of probe"),
    (ProbeSpec("k", "http", "ftp://x"), "not an http"),
    (ProbeSpec("k", "tcp", "localhost"), "not host:port"),
    (ProbeSpec("k", "smtp", "localhost:99999"), "not host:port"),
    (ProbeSpec("k", "ldap", "http://x"), "not an ldap"),
    (ProbeSpec("k", "dns", "bad name!"), "not a DNS name"),
    (ProbeSpec("k", "tcp", "localhost:80", timeout=0), "timeout"),
    (ProbeSpec("k", "imap", "localhost:993", options={"tls": "maybe"}), "tls option"),
    (ProbeSpec("k", "tcp", "localhost:80", ("[STATUS] == 200",)), "no value for a tcp"),
    (ProbeSpec("k", "http", "https://pads.example.org/", options={"connect_to": "proxy"}),
     "connect_to 'proxy' is not host:port"),
    (ProbeSpec("k", "smtp", "mail.example.org:25", options={"connect_to": "127.0.0.1:25"}),
     "connect_to applies to http and tls"),
])
def test_a_spec_no_engine_can_run_is_refused(spec: ProbeSpec, message: str) -> None:
    with pytest.raises((BadSpec, BadCondition), match=message):
        validate_spec(spec)


def test_host_and_port() -> None:
    assert split_host_port("mail.example.org:587") == ("mail.example.org", 587)
    assert split_host_port("[::1]:25") == ("::1", 25)
    with pytest.raises(BadSpec):
        split_host_port("mail.example.org")


def test_dns_server_addresses() -> None:
    from chaton.adapters.probes import dns_server

    assert dns_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert dns_server("9.9.9.9") == ("9.9.9.9", 53)
    assert dns_server("::1") == ("::1", 53)
    assert dns_server("[::1]:5353") == ("::1", 5353)
    with pytest.raises(BadSpec):
        dns_server("")


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(BadSpec) as refused:
        validate_spec(ProbeSpec("k", "http", "ftp://admin:s3cret-word@files.example.org/"))
    assert "s3cret" not in str(refused.value) and "•••@files.example.org" in str(refused.value)
