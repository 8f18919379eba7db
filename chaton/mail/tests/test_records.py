"""The records a domain needs, as golden zone-file snippets (pure: no database)."""

from __future__ import annotations

from chaton.adapters.dns import join_txt, split_txt
from chaton.mail.records import DomainFacts, KeyFacts, expected, mta_sts_policy, zone_snippet

KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" + "x" * 348


def test_a_domain_with_everything():
    facts = DomainFacts(
        name="example.org", zone="example.org.", mx_hosts=("mx.example.org",),
        sending_addresses=("192.0.2.25", "2001:db8::25"), dmarc_policy="quarantine",
        dmarc_report_address="dmarc@example.org", tls_rpt_address="tls@example.org",
        advertised=(KeyFacts("k1", "rsa", "AAAA"),), withdrawn=("k0",),
        web_host="chaton.example.org", caa_issuer="letsencrypt.org")
    snippet = zone_snippet(expected(facts))
    assert snippet == GOLDEN.replace("POLICY_ID", _policy_id(facts))


GOLDEN = """\
; zone example.org.
example.org. 3600 IN MX 10 mx.example.org.
example.org. 3600 IN TXT "v=spf1 mx ip4:192.0.2.25 ip6:2001:db8::25 -all"
k1._domainkey.example.org. 300 IN TXT "v=DKIM1; k=rsa; p=AAAA"
; remove: k0._domainkey.example.org. TXT
_dmarc.example.org. 3600 IN TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org"
_mta-sts.example.org. 3600 IN TXT "v=STSv1; id=POLICY_ID"
mta-sts.example.org. 3600 IN CNAME chaton.example.org.
_smtp._tls.example.org. 3600 IN TXT "v=TLSRPTv1; rua=mailto:tls@example.org"
_submission._tcp.example.org. 3600 IN SRV 0 1 587 mx.example.org.
_submissions._tcp.example.org. 3600 IN SRV 0 1 465 mx.example.org.
_imap._tcp.example.org. 3600 IN SRV 0 0 0 .
_imaps._tcp.example.org. 3600 IN SRV 0 1 993 mx.example.org.
autoconfig.example.org. 3600 IN CNAME chaton.example.org.
autodiscover.example.org. 3600 IN CNAME chaton.example.org.
example.org. 3600 IN CAA 0 issue "letsencrypt.org"
"""


def _policy_id(facts: DomainFacts) -> str:
    from chaton.mail.records import mta_sts_id

    return mta_sts_id(facts)


def test_the_mta_sts_id_changes_with_the_policy():
    testing = DomainFacts(name="example.org", zone="example.org.", mx_hosts=("mx.example.org",))
    enforce = DomainFacts(name="example.org", zone="example.org.", mx_hosts=("mx.example.org",),
                          mta_sts_mode="enforce")
    assert _policy_id(testing) != _policy_id(enforce)
    assert "mode: enforce" in mta_sts_policy(enforce)


def test_a_bare_domain_gets_spf_and_dmarc_only():
    facts = DomainFacts(name="example.org", zone="example.org.", mta_sts_mode="none")
    assert zone_snippet(expected(facts)) == """\
; zone example.org.
example.org. 3600 IN TXT "v=spf1 mx -all"
_dmarc.example.org. 3600 IN TXT "v=DMARC1; p=none"
"""


def test_dkim_in_another_zone_with_fixed_cnames():
    facts = DomainFacts(name="partner.example", zone="partner.example.", mta_sts_mode="none",
                        advertised=(KeyFacts("b", "rsa", "BBBB"),), dkim_zone="dkim.example.org.",
                        cname_selectors=("a", "b", "c"))
    snippet = zone_snippet(expected(facts))
    assert "; zone dkim.example.org.\nb.partner.example.dkim.example.org. 300 IN TXT " \
           '"v=DKIM1; k=rsa; p=BBBB"\n' in snippet
    for selector in "abc":
        assert (f"{selector}._domainkey.partner.example. 3600 IN CNAME "
                f"{selector}.partner.example.dkim.example.org.") in snippet


def test_dmarc_reports_to_another_managed_domain_are_authorised_there():
    facts = DomainFacts(name="partner.example", zone="partner.example.", mta_sts_mode="none",
                        dmarc_report_address="dmarc@example.org", report_zone="example.org.")
    snippet = zone_snippet(expected(facts))
    assert ('; zone example.org.\npartner.example._report._dmarc.example.org. 3600 IN TXT '
            '"v=DMARC1"') in snippet


def test_an_spf_record_over_255_characters_is_split_into_strings():
    addresses = tuple(f"198.51.100.{index}" for index in range(1, 30))
    facts = DomainFacts(name="example.org", zone="example.org.", mta_sts_mode="none",
                        sending_addresses=addresses)
    (spf,) = [item for item in expected(facts) if item.purpose == "SPF"]
    (value,) = spf.record.values
    assert len(value) > 255 and value.endswith(" -all")
    line = next(line for line in zone_snippet(expected(facts)).splitlines() if "v=spf1" in line)
    assert line.count('" "') == len(value) // 255
    assert join_txt(split_txt(value)) == value
    assert all(len(part.encode()) <= 255 for part in split_txt(value))


def test_a_2048_bit_dkim_record_is_split_too():
    facts = DomainFacts(name="example.org", zone="example.org.", mta_sts_mode="none",
                        advertised=(KeyFacts("k1", "rsa", KEY),))
    line = next(line for line in zone_snippet(expected(facts)).splitlines() if "DKIM1" in line)
    assert line.startswith('k1._domainkey.example.org. 300 IN TXT "v=DKIM1; k=rsa; p=MIIB')
    assert '" "' in line
