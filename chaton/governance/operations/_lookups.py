"""Finding the objects that operation params name (by natural key), with clear errors."""

from __future__ import annotations

from django.utils.translation import gettext as _

from chaton.core.errors import NotFound
from chaton.directory.models import Account, Group
from chaton.members.models import Organization, Person


def group(name: str) -> Group:
    found = Group.objects.filter(name=name).first()
    if found is None:
        raise NotFound(_("There is no group %(name)s.") % {"name": name}, field="group")
    return found


def account(uid: str) -> Account:
    found = Account.objects.filter(uid=uid).first()
    if found is None:
        raise NotFound(_("There is no account %(uid)s.") % {"uid": uid}, field="account")
    return found


def person(email: str) -> Person:
    found = Person.objects.filter(email__iexact=email).first()
    if found is None:
        raise NotFound(_("There is no person with the email %(email)s.") % {"email": email},
                       field="person")
    return found


def organization(slug: str) -> Organization:
    found = Organization.objects.filter(slug=slug).first()
    if found is None:
        raise NotFound(_("There is no organization %(slug)s.") % {"slug": slug},
                       field="organization")
    return found
