"""Expiry: notices mailed before an account or an access expires, and the expiry itself.

The reconciler already keeps expired accounts and memberships out of the
directory (the desired state is computed at "now"). This job adds what people
need around it: a mail some days before (``directory.expiry_notice_days``),
and an audit row when the date passes, each exactly once. The mail goes
through the notifications queue (:mod:`chaton.notifications.outbox`): recorded
with its notice in one transaction, tried at once, retried by the worker.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from chaton.core import audit, clock
from chaton.directory.actions import groups_of
from chaton.directory.models import Account, AccountState, ExpiryNotice, GroupMembership
from chaton.directory.tasks import sync_after_commit
from chaton.notifications import outbox

logger = logging.getLogger("chaton.directory")


@dataclass
class ExpiryReport:
    notices_sent: int = 0
    #: Notices whose first attempt failed: queued, the worker retries them.
    notices_failed: int = 0
    expired_accounts: list[str] = field(default_factory=list)
    expired_memberships: list[str] = field(default_factory=list)

    def count(self, sent: bool | None) -> None:
        """Count a notice by what :func:`_notify` returned (None: it had gone already)."""
        if sent is True:
            self.notices_sent += 1
        elif sent is False:
            self.notices_failed += 1

    def lines(self) -> list[str]:
        return [_("expiry notices sent: %(sent)d (failed: %(failed)d)") % {
                    "sent": self.notices_sent, "failed": self.notices_failed},
                _("accounts expired: %(uids)s") % {
                    "uids": ", ".join(self.expired_accounts) or "-"},
                _("group accesses expired: %(accesses)s") % {
                    "accesses": ", ".join(self.expired_memberships) or "-"}]


def _already(account: Account, group_id: int | None, expires_at: dt.datetime, kind: str) -> bool:
    notices = ExpiryNotice.objects.filter(account=account, expires_at=expires_at, kind=kind)
    if group_id is None:
        return notices.filter(group__isnull=True).exists()
    return notices.filter(group_id=group_id).exists()


def _notify(account: Account, expires_at: dt.datetime, group_id: int | None,
            group_name: str | None) -> bool | None:
    """Queue the mail telling ``account`` that it (or its access to ``group_name``) expires,
    and record it, once, in one transaction; try it at once after the commit.

    Return whether that first attempt sent it (the worker retries it otherwise),
    or None when the notice was already recorded.
    """
    with translation.override(settings.LANGUAGE_CODE):
        when = formats.date_format(timezone.localtime(expires_at, clock.collective_zone()),
                                   "DATETIME_FORMAT")
        if group_name:
            subject = _("Your access to %(group)s expires on %(date)s") % {
                "group": group_name, "date": when}
        else:
            subject = _("Your account %(uid)s expires on %(date)s") % {
                "uid": account.uid, "date": when}
        body = _("Hello %(name)s,\n\n%(subject)s.\nIf it should go on, ask the collective's "
                 "administrators to extend it before that date.\n") % {
            "name": account.display_name, "subject": subject}
    with transaction.atomic():
        if not _record(account, group_id, expires_at, ExpiryNotice.Kind.NOTICE):
            return None
        notification = outbox.enqueue_mail(
            [account.email], subject, body,
            source=f"expiry notice {account.uid}" + (f"@{group_name}" if group_name else ""))
        outbox.send_on_commit([notification])
    notification.refresh_from_db(fields=["sent_at"])
    if notification.sent_at is None:
        logger.warning("expiry notice to %s not sent yet: %s", account.uid,
                       "queued for a retry")
        return False
    return True


def _record(account: Account, group_id: int | None, expires_at: dt.datetime, kind: str) -> bool:
    """Write the once-only marker; return False if it was already written."""
    # The unique constraint does not cover group=NULL (NULLs are distinct in SQL): check first.
    if _already(account, group_id, expires_at, kind):
        return False
    try:
        with transaction.atomic():
            ExpiryNotice.objects.create(account=account, group_id=group_id, expires_at=expires_at,
                                        kind=kind, sent_at=clock.now())
    except IntegrityError:
        return False
    return True


def process_expiries() -> ExpiryReport:
    """Send due notices and record expiries that happened; return what was done."""
    report = ExpiryReport()
    now = clock.now()
    horizon = now + dt.timedelta(days=settings.CHATON.directory.expiry_notice_days)
    kind_notice, kind_expired = ExpiryNotice.Kind.NOTICE, ExpiryNotice.Kind.EXPIRED

    soon = Account.objects.filter(state=AccountState.ACTIVE, expires_at__gt=now,
                                  expires_at__lte=horizon)
    for account in soon:
        assert account.expires_at is not None
        if _already(account, None, account.expires_at, kind_notice):
            continue
        sent = _notify(account, account.expires_at, None, None)
        report.count(sent)

    soon_memberships = (GroupMembership.objects.valid(now)
                        .filter(expires_at__gt=now, expires_at__lte=horizon)
                        .select_related("account", "group"))
    for membership in soon_memberships:
        assert membership.expires_at is not None
        if _already(membership.account, membership.group_id, membership.expires_at, kind_notice):
            continue
        sent = _notify(membership.account, membership.expires_at, membership.group_id,
                       membership.group.name)
        report.count(sent)

    for account in Account.objects.filter(state=AccountState.ACTIVE, expires_at__lte=now):
        assert account.expires_at is not None
        with transaction.atomic():
            if not _record(account, None, account.expires_at, kind_expired):
                continue
            audit.record("account.expired", account, acting_user=None, actor_label="worker",
                         after={"expires_at": account.expires_at.isoformat()})
            sync_after_commit(account_uids=[account.uid], group_names=groups_of(account))
        report.expired_accounts.append(account.uid)

    expired = GroupMembership.objects.filter(expires_at__lte=now).select_related("account",
                                                                                "group")
    for membership in expired:
        assert membership.expires_at is not None
        with transaction.atomic():
            if not _record(membership.account, membership.group_id, membership.expires_at,
                           kind_expired):
                continue
            audit.record("group.member_expired", membership.group, acting_user=None,
                         actor_label="worker",
                         after={"account": membership.account.uid,
                                "expires_at": membership.expires_at.isoformat()})
            sync_after_commit(group_names=[membership.group.name])
        report.expired_memberships.append(f"{membership.account.uid}@{membership.group.name}")
    return report


def expired_between(start: dt.datetime, end: dt.datetime) -> bool:
    """Return whether an account or a group access reached its expiry in ``start``..``end``.

    Two cheap queries: the worker asks at every tick, so that an access ends
    at its date and not at the next periodic run.
    """
    return (Account.objects.filter(expires_at__gt=start, expires_at__lte=end).exists()
            or GroupMembership.objects.filter(expires_at__gt=start, expires_at__lte=end).exists())
