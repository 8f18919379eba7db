"""What the installed apps plug in (chaton.core.registry), as pages, worker and CLI see it."""

from __future__ import annotations

import re

import pytest

from chaton.core import registry
from chaton.core.registry import NavEntry
from chaton.core.worker import Schedule


def test_a_nav_entry_is_current_by_name_prefix_or_part() -> None:
    plain = NavEntry(label="Audit log", url_name="audit-log")
    assert plain.is_current("audit-log") and not plain.is_current("audit-log-export")
    prefixed = NavEntry(label="Backups", url_name="backup-overview", active=("backup-*",))
    assert prefixed.is_current("backup-plan") and not prefixed.is_current("my-backup-plan")
    inside = NavEntry(label="Persons", url_name="person-list",
                      active=("*person-*", "*membership-*"))
    assert inside.is_current("person-detail") and inside.is_current("end-membership-form")
    assert not inside.is_current("") and not inside.is_current("account-list")


def test_the_bars_keep_their_links_in_order() -> None:
    account = [entry.url_name for entry in registry.nav_entries(admin_only=False)]
    assert account == ["profile", "password-change", "ssh-keys", "two-factor", "decision-list"]
    admin = [entry.url_name for entry in registry.nav_entries(admin_only=True)]
    assert admin == ["overview", "person-list", "organization-list", "member-counts",
                     "account-list", "group-list", "backup-overview", "directory-plan",
                     "service-overview",
                     "monitoring-probes", "stats-overview", "report-admin-list",
                     "transparency-settings", "audit-log"]


def test_the_cli_groups_keep_their_order() -> None:
    assert [group.name for group in registry.cli_groups()] == [
        "directory", "member", "org", "account", "group", "ssh-key", "token", "decision",
        "backup", "job", "notification", "service", "monitor", "stats", "report",
        "chatonsinfos", "transparency"]


def test_the_worker_asks_the_directory_first_and_the_demo_loads_members_first() -> None:
    assert registry.job_modules() == ["chaton.directory.jobs", "chaton.governance.jobs",
                                      "chaton.backups.jobs", "chaton.services.jobs",
                                      "chaton.notifications.jobs", "chaton.monitoring.jobs",
                                      "chaton.stats.jobs", "chaton.transparency.jobs"]
    assert [loader.__module__ for loader in registry.demo_loaders()] == [
        "chaton.members.demo", "chaton.directory.demo", "chaton.governance.demo",
        "chaton.backups.demo", "chaton.services.demo", "chaton.monitoring.demo",
        "chaton.reports.demo", "chaton.transparency.demo"]


@pytest.mark.django_db
@pytest.mark.usefixtures("english")
def test_the_bars_show_to_whom_they_belong(client, directory) -> None:
    from chaton.directory import actions

    member = actions.do_create_account("nina", acting_user=None, display_name="Nina",
                                       email="nina@example.org")
    client.force_login(member)
    page = client.get("/me/").content.decode()
    assert '<a href="/me/" aria-current="page">My account</a>' in page
    assert '<a href="/decisions/">Decisions</a>' in page
    # A member sees no administration bar, nor any of its links.
    assert "admin-nav" not in page and 'href="/audit/"' not in page

    admin = actions.do_create_account("olga", acting_user=None, display_name="Olga",
                                      email="olga@example.org", is_admin=True)
    client.force_login(admin)
    page = client.get("/me/").content.decode()
    bar = page[page.index('class="admin-nav"'):]
    assert re.findall(r'href="([^"]+)"', bar[:bar.index("</nav>")]) == [
        "/overview/", "/members/", "/organizations/", "/members/counts/", "/accounts/",
        "/groups/",
        "/backups/", "/directory/", "/services/", "/monitoring/", "/stats/", "/reports/admin/",
        "/transparency/settings/", "/audit/"]


def test_each_job_module_keeps_its_state_apart() -> None:
    schedule = Schedule()
    schedule.state.setdefault("directory", {})["reconciled_on"] = "a day"
    assert schedule.state == {"directory": {"reconciled_on": "a day"}}
    assert Schedule().state == {}
