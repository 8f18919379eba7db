"""Nextcloud's behaviour beyond its manifest: what ``occ`` sets once the instance answers.

Nextcloud keeps most of its configuration in its database and ``config.php``,
not in the environment. :func:`setup_commands` lists the ``occ`` calls that
make an installed instance match its settings and wire its LDAP login (the
``user_ldap`` app); each call sets a value, so running them again changes
nothing. The reconciler runs them in the application's container as
``SETUP_USER``, in ``SETUP_DIRECTORY``, after the health check passed.

The LDAP configuration is written with ``config:app:set`` under the prefix
``s01`` rather than with ``ldap:create-empty-config``, which would add a new
configuration at every run.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Mapping
from typing import Any

SETUP_USER = "www-data"
SETUP_DIRECTORY = "/var/www/html"
#: The user_ldap configuration Chaton owns.
LDAP_PREFIX = "s01"


def _occ(*arguments: str) -> list[str]:
    return ["php", "occ", "--no-interaction", *arguments]


def ldap_server(url: str) -> tuple[str, str]:
    """Given an LDAP URL (``ldap://host:389``), return user_ldap's host (with scheme) and port."""
    parsed = urllib.parse.urlsplit(url)
    default_port = "636" if parsed.scheme == "ldaps" else "389"
    return f"{parsed.scheme}://{parsed.hostname}", str(parsed.port or default_port)


def ldap_configuration(context: Mapping[str, str]) -> dict[str, str]:
    """Given an instance's placeholders, return user_ldap's keys (without prefix) and values."""
    host, port = ldap_server(context["ldap.url"])
    return {
        "ldap_host": host,
        "ldap_port": port,
        "ldap_base": context["ldap.base_dn"],
        "ldap_base_users": context["ldap.people_dn"],
        "ldap_base_groups": context["ldap.groups_dn"],
        # The instance's own read-only account (chaton.services.accounts) searches.
        "ldap_dn": context["ldap.bind_dn"],
        # user_ldap keeps the bind password base64-encoded in its app configuration.
        "ldap_agent_password": base64.b64encode(context["ldap.bind_password"].encode()).decode(),
        # Only the login group's members (memberOf), when the instance names one.
        "ldap_userlist_filter": context["ldap.user_filter"],
        "ldap_login_filter": f"(&{context['ldap.user_filter']}(uid=%uid))",
        "ldap_login_filter_mode": "0",
        "ldap_expert_username_attr": "uid",
        "ldap_email_attr": "mail",
        "ldap_display_name": "cn",
        "ldap_group_filter": "(objectClass=groupOfNames)",
        "ldap_group_member_assoc_attribute": "member",
        "ldap_tls": "0",
        "ldap_configuration_active": "1",
    }


def setup_commands(values: Mapping[str, Any], context: Mapping[str, str]) -> list[list[str]]:
    """Given an instance's settings and placeholders, return the ``occ`` calls that apply them."""
    quota = f"{values['default_quota_gb']} GB" if values["default_quota_gb"] else "none"
    commands = [
        _occ("config:system:set", "default_language", "--value", values["default_language"]),
        _occ("config:system:set", "default_phone_region", "--value",
             values["default_phone_region"]),
        _occ("config:app:set", "files", "default_quota", "--value", quota),
        _occ("config:system:set", "skeletondirectory", "--value",
             "/usr/src/nextcloud/core/skeleton" if values["skeleton_files"] else ""),
        _occ("app:enable", "user_ldap"),
    ]
    commands += [_occ("config:app:set", "user_ldap", f"{LDAP_PREFIX}{key}", "--value", value)
                 for key, value in ldap_configuration(context).items()]
    return commands
