"""Checks on what people type: domain names, selectors, zones."""

from __future__ import annotations

import ipaddress
import re

from django.utils.translation import gettext as _

from chaton.core.errors import InvalidInput

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


def is_domain(value: str) -> bool:
    """Return whether ``value`` (without the trailing dot) is a domain of two labels or more."""
    labels = value.split(".")
    return (len(value) <= 253 and len(labels) >= 2 and not labels[-1].isdigit()
            and all(_LABEL.match(label) for label in labels))


def clean_domain(value: str, *, field: str = "name") -> str:
    """Return ``value`` as a domain (lower case, no trailing dot). Raise InvalidInput."""
    name = value.strip().lower().removesuffix(".")
    if not is_domain(name):
        raise InvalidInput(_("“%(value)s” is not a domain name (such as example.org).")
                           % {"value": value}, field=field)
    return name


def clean_zone_name(value: str, *, field: str = "zone") -> str:
    """Return ``value`` as an absolute zone name ("example.org."). Raise InvalidInput."""
    return clean_domain(value, field=field) + "."


def in_zone(domain: str, zone: str) -> bool:
    """Return whether ``domain`` (no trailing dot) is ``zone`` ("example.org.") or below it."""
    apex = zone.removesuffix(".")
    return domain == apex or domain.endswith("." + apex)


def check_in_zone(domain: str, zone: str, *, field: str = "zone") -> None:
    """Raise InvalidInput unless ``domain`` is in ``zone``."""
    if not in_zone(domain, zone):
        raise InvalidInput(_("%(domain)s is not in the zone %(zone)s: Chaton cannot write its "
                             "records there.") % {"domain": domain, "zone": zone}, field=field)


def clean_selector(value: str, *, field: str = "selector") -> str:
    """Return ``value`` as a DKIM selector (letters, digits, hyphens). Raise InvalidInput."""
    if not _SELECTOR.match(value):
        raise InvalidInput(_("“%(value)s” is not a valid selector: use letters, digits and "
                             "hyphens (at most 63, not at either end).") % {"value": value},
                           field=field)
    return value.lower()


def clean_addresses(values: list[str], *, field: str = "sending_addresses") -> list[str]:
    """Return ``values`` as IP addresses (v4 or v6) in canonical form. Raise InvalidInput."""
    cleaned = []
    for value in values:
        try:
            cleaned.append(str(ipaddress.ip_address(value.strip())))
        except ValueError:
            raise InvalidInput(_("“%(value)s” is not an IP address.") % {"value": value},
                               field=field) from None
    return cleaned


def clean_hosts(values: list[str], *, field: str = "mx_hosts") -> list[str]:
    """Return ``values`` as host names. Raise InvalidInput."""
    return [clean_domain(value, field=field) for value in values]
