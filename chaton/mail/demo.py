"""The demo's mail identity: the collective's domain in a zone set by hand, so that
``make run`` shows its records without a DNS server."""

from __future__ import annotations

from chaton.core.demo import DemoReport


def load(report: DemoReport) -> None:
    """Create the demo zone and mail domain when missing, through the actions."""
    from chaton.mail import actions
    from chaton.mail.models import DnsZone, MailDomain

    zone = DnsZone.objects.filter(name="example.org.").first()
    if zone is None:
        zone = actions.do_create_zone("example.org", acting_user=None, mode="manual")
        report.created.append("mail zone example.org.")
    if not MailDomain.objects.filter(name="example.org").exists():
        actions.do_add_domain("example.org", acting_user=None, zone=zone,
                              mx_hosts=["mx.example.org"], sending_addresses=["192.0.2.25"],
                              dmarc_policy="quarantine",
                              dmarc_report_address="dmarc@example.org",
                              tls_rpt_address="tls-reports@example.org")
        report.created.append("mail domain example.org")
