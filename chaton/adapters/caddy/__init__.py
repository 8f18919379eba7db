"""Caddy, the reverse proxy: its whole configuration built from routes, its admin API, and a
Caddy that Chaton runs itself.

Chaton owns the Caddy it talks to. :func:`build_config` turns every route that
must exist (a domain proxied to ``host:port``) and the :class:`ProxySettings`
(ports, ACME issuer, storage) into Caddy's complete JSON configuration: one HTTP
server on the HTTPS port with one host-matched ``reverse_proxy`` route per
domain, automatic HTTPS (certificates from the ACME server, obtained with the
HTTP-01 challenge on the HTTP port, which also redirects to HTTPS — or, with
``tls = "internal"``, from Caddy's own certificate authority, whose root
:meth:`ProxyAdmin.root_certificate` returns), and the certificates kept in a
storage folder. :func:`plan` compares that with the
configuration Caddy holds and says what changes (routes added, removed,
changed; settings changed); :func:`sync` loads the new configuration only when
it differs, through ``POST /load``, which Caddy applies atomically: a refused
configuration leaves the previous one serving.

What apps call is the :class:`ProxyAdmin` protocol:
:class:`chaton.adapters.caddy.client.CaddyAdmin` is the real client of the
admin API, :class:`chaton.adapters.caddy.fake.FakeCaddyAdmin` an in-memory
stand-in for unit tests. :class:`chaton.adapters.caddy.server.ManagedCaddy` runs
``caddy run`` with its admin API on 127.0.0.1, its data and configuration in a folder it is given,
and stops it by its own pid. It starts from the configuration Caddy saved last
time (its "autosave"), so a restarted Caddy serves the same routes at once.

Layout of a managed Caddy's folder::

    data/                 XDG_DATA_HOME: Caddy's own data (instance id …)
    config/               XDG_CONFIG_HOME: config/caddy/autosave.json, the last loaded config
    start.json            the configuration ``caddy run`` starts from
    caddy.pid             written by Caddy; lets a later process stop it
    caddy.log             Caddy's output (JSON lines)

Exceptions::

    CaddyError(RuntimeError)
    ├── ProxyUnreachable(ConnectionError)   the admin API does not answer (down, wrong address …)
    ├── ProxyRefused                        Caddy answered but refused (a port taken …); its reason
    ├── ProxyInvalid(ValueError)            a route or setting that cannot go into a configuration
    └── CaddyStartError                     a managed Caddy that would not start or stop

Nothing here imports Django.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from chaton.adapters import Slot

logger = logging.getLogger("chaton.proxy")

#: The caddy binary (Debian package caddy).
CADDY = "caddy"
#: The name of Chaton's HTTPS server in Caddy's configuration.
SERVER_NAME = "chaton"
#: The logger of the HTTP server's access log.
ACCESS_LOGGER = "http.log.access"
#: Every route Chaton writes carries an ``@id`` with this prefix and the domain.
ROUTE_ID_PREFIX = "chaton-route-"
#: How long Caddy lets requests in flight finish when a new configuration replaces the old
#: one: without a bound, one long poll would hold ``POST /load`` open.
GRACE_PERIOD = "5s"
#: Where certificates come from: an ACME server, or Caddy's own authority.
TLS_MODES = ("acme", "internal")
#: The id of Caddy's own certificate authority in its ``pki`` app.
INTERNAL_CA = "local"
#: Seconds to wait for the admin API's answer to a read; a load may take longer (it starts
#: and stops listeners).
READ_TIMEOUT = 10.0
LOAD_TIMEOUT = 60.0

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")


class CaddyError(RuntimeError):
    """Base of every error this adapter raises."""


class ProxyUnreachable(CaddyError, ConnectionError):
    """Caddy's admin API does not answer."""


class ProxyRefused(CaddyError):
    """Caddy's admin API answered with an error; the message carries Caddy's reason."""


class ProxyInvalid(CaddyError, ValueError):
    """A route or a setting that cannot be written into Caddy's configuration."""


class CaddyStartError(CaddyError):
    """A managed Caddy could not be started or stopped."""


# -- what must exist ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One domain served over HTTPS, proxied to ``upstream`` (``host:port``)."""

    domain: str
    upstream: str


@dataclass(frozen=True)
class ProxySettings:
    """Everything in Caddy's configuration that is not a route.

    ``admin_listen`` is the admin API's ``host:port``: it must be in every
    configuration loaded, or Caddy would move its admin API to its default
    address. ``acme_ca_root`` is a PEM file of the root that signs the ACME
    server's own HTTPS (empty: the system's roots). ``listen_host`` is the
    address the HTTPS and HTTP ports are bound to (empty: every interface).
    """

    admin_listen: str
    http_port: int
    https_port: int
    acme_ca: str
    acme_ca_root: str = ""
    acme_email: str = ""
    storage_root: str = ""
    listen_host: str = "127.0.0.1"
    #: The file the access log of every route is written to, one JSON object a line (empty:
    #: no access log). Usage statistics read it.
    access_log: str = ""
    #: "acme": certificates from ``acme_ca``; "internal": from Caddy's own authority.
    tls: str = "acme"


def domain_problem(domain: str) -> str | None:
    """Given a domain, return why it cannot be served (a short English phrase), or None."""
    if domain != domain.strip().lower().rstrip("."):
        return "not in lower case without spaces or a final dot"
    if len(domain) > 253 or not _DOMAIN.match(domain):
        return "not a host name (letters, digits and hyphens in dot-separated labels)"
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return None
    return "an IP address, not a domain"


def upstream_problem(upstream: str) -> str | None:
    """Given ``host:port`` (``[v6]:port`` for IPv6), return why it is unusable, or None."""
    host, _colon, port_text = upstream.rpartition(":")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return "no port between 1 and 65535 after the last colon"
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return "not an IPv6 address between the brackets"
        return None
    if not host or (not _DOMAIN.match(host) and not _is_ipv4(host)):
        return "no host name or IPv4 address before the port"
    return None


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def checked_routes(routes: Iterable[Route]) -> list[Route]:
    """Given routes, return them sorted by domain, each once.

    Raise ProxyInvalid for a bad domain or upstream, or a domain routed to two
    different upstreams.
    """
    by_domain: dict[str, Route] = {}
    for route in routes:
        problem = domain_problem(route.domain)
        if problem:
            raise ProxyInvalid(f"domain {route.domain!r}: {problem}")
        problem = upstream_problem(route.upstream)
        if problem:
            raise ProxyInvalid(f"upstream {route.upstream!r} of {route.domain}: {problem}")
        known = by_domain.setdefault(route.domain, route)
        if known.upstream != route.upstream:
            raise ProxyInvalid(f"domain {route.domain} is routed to both {known.upstream} and "
                               f"{route.upstream}")
    return [by_domain[domain] for domain in sorted(by_domain)]


# -- the configuration --------------------------------------------------------------------------


def _listen_address(host: str, port: int) -> str:
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def route_config(route: Route) -> dict[str, Any]:
    """Given a route, return its Caddy route object (host matcher, reverse_proxy handler)."""
    return {
        "@id": ROUTE_ID_PREFIX + route.domain,
        "match": [{"host": [route.domain]}],
        "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": route.upstream}]}],
        "terminal": True,
    }


def build_config(routes: Iterable[Route], settings: ProxySettings) -> dict[str, Any]:
    """Given every route that must exist and the settings, return Caddy's whole JSON config.

    The same routes in any order give the same configuration. Raise
    ProxyInvalid for a bad route or port.
    """
    for name, port in (("http_port", settings.http_port), ("https_port", settings.https_port)):
        if not 0 < port < 65536:
            raise ProxyInvalid(f"{name} {port}: not a port between 1 and 65535")
    if settings.http_port == settings.https_port:
        raise ProxyInvalid(f"http_port and https_port are both {settings.http_port}")
    if settings.tls not in TLS_MODES:
        raise ProxyInvalid(f"tls {settings.tls!r}: expected one of {', '.join(TLS_MODES)}")
    issuer: dict[str, Any]
    if settings.tls == "internal":
        # Caddy's own authority (its root and intermediate live in the storage folder).
        issuer = {"module": "internal", "ca": INTERNAL_CA}
    else:
        if not settings.acme_ca.startswith("https://"):
            raise ProxyInvalid(f"acme_ca {settings.acme_ca!r}: not an https:// URL")
        issuer = {
            "module": "acme",
            "ca": settings.acme_ca,
            # Only HTTP-01, answered on http_port: deterministic, and TLS-ALPN-01 would need
            # the ACME server to reach https_port under the name it validates, which a test
            # CA (pebble validates on its own tlsPort) or a firewall may not allow.
            "challenges": {"tls-alpn": {"disabled": True}},
        }
        if settings.acme_email:
            issuer["email"] = settings.acme_email
        if settings.acme_ca_root:
            issuer["trusted_roots_pem_files"] = [settings.acme_ca_root]
    routes_config = [route_config(route) for route in checked_routes(routes)]
    # A request whose Host no route claims gets a 404, not Caddy's empty 200.
    routes_config.append({"handle": [{"handler": "static_response", "status_code": 404}]})
    config: dict[str, Any] = {
        "admin": {"listen": settings.admin_listen},
        "apps": {
            "http": {
                "http_port": settings.http_port,
                "https_port": settings.https_port,
                "grace_period": GRACE_PERIOD,
                "servers": {
                    SERVER_NAME: {
                        "listen": [_listen_address(settings.listen_host, settings.https_port)],
                        "routes": routes_config,
                        # TLS always, even with no route left: a removed domain fails the
                        # handshake instead of being answered in plain HTTP on the HTTPS port.
                        "tls_connection_policies": [{}],
                    },
                },
            },
            "tls": {"automation": {"policies": [{"issuers": [issuer]}]}},
        },
    }
    if settings.tls == "internal":
        # Never into this machine's trust store: Caddy is not root, and people install the
        # root themselves (the services page offers it).
        config["apps"]["pki"] = {"certificate_authorities": {
            INTERNAL_CA: {"name": "Chaton", "install_trust": False}}}
    if settings.access_log:
        # Every request as one JSON line into its own file; Caddy's own log stays as it was.
        config["apps"]["http"]["servers"][SERVER_NAME]["logs"] = {}
        config["logging"] = {"logs": {
            "default": {"exclude": [ACCESS_LOGGER]},
            "access": {"writer": {"output": "file", "filename": settings.access_log,
                                  "roll_keep": 3},
                       "encoder": {"format": "json"}, "include": [ACCESS_LOGGER]}}}
    if settings.storage_root:
        config["storage"] = {"module": "file_system", "root": settings.storage_root}
    return config


# -- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteChange:
    """One route to add, remove or point elsewhere; ``upstream`` is None for a removal."""

    action: Literal["add", "remove", "change"]
    domain: str
    upstream: str | None
    previous_upstream: str | None = None


@dataclass(frozen=True)
class ProxyPlan:
    """What loading ``config`` would change in Caddy; empty when Caddy already holds it.

    ``settings_changed`` names the parts besides routes that differ: ``admin``,
    ``ports``, ``tls``, ``storage``, ``other``.
    """

    changes: tuple[RouteChange, ...]
    settings_changed: tuple[str, ...]
    config: dict[str, Any] = field(compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.settings_changed


def served_routes(config: Mapping[str, Any]) -> dict[str, str]:
    """Given a Caddy configuration, return {domain: upstream} for every host-matched route.

    Routes written by hand are read too, as far as their shape allows (an
    upstream that cannot be read is ``""``), so that a plan reports them.
    """
    served: dict[str, str] = {}
    servers = _get(config, "apps", "http", "servers")
    if not isinstance(servers, dict):
        return served
    for server in servers.values():
        routes = server.get("routes") if isinstance(server, dict) else None
        for route in routes if isinstance(routes, list) else []:
            if not isinstance(route, dict):
                continue
            upstream = _first_dial(route.get("handle"))
            for matcher in route.get("match") or []:
                hosts = matcher.get("host") if isinstance(matcher, dict) else None
                for host in hosts if isinstance(hosts, list) else []:
                    if isinstance(host, str):
                        served.setdefault(host, upstream)
    return served


def _first_dial(handlers: object) -> str:
    for handler in handlers if isinstance(handlers, list) else []:
        if isinstance(handler, dict) and handler.get("handler") == "reverse_proxy":
            for upstream in handler.get("upstreams") or []:
                if isinstance(upstream, dict) and isinstance(upstream.get("dial"), str):
                    return str(upstream["dial"])
    return ""


def _get(config: object, *path: str) -> object:
    for key in path:
        if not isinstance(config, dict):
            return None
        config = config.get(key)
    return config


def _settings_view(config: Mapping[str, Any]) -> dict[str, object]:
    """Return the parts of a configuration besides routes, by the name a plan gives them."""
    rest = copy.deepcopy(dict(config))
    http = _get(rest, "apps", "http")
    ports: dict[str, object] = {}
    if isinstance(http, dict):
        for key in ("http_port", "https_port", "grace_period"):
            ports[key] = http.pop(key, None)
        for name, server in (http.get("servers") or {}).items():
            if isinstance(server, dict):
                ports[f"{name}.listen"] = server.pop("listen", None)
                server.pop("routes", None)
    apps = rest.get("apps") if isinstance(rest.get("apps"), dict) else {}
    return {
        "admin": rest.pop("admin", None),
        "ports": ports,
        "tls": [apps.pop("tls", None), apps.pop("pki", None)] if isinstance(apps, dict)
        else None,
        "storage": rest.pop("storage", None),
        "other": rest,
    }


def plan(current: Mapping[str, Any], routes: Iterable[Route],
         settings: ProxySettings) -> ProxyPlan:
    """Given Caddy's current configuration, the routes that must exist and the settings,
    return the plan that makes Caddy serve exactly those.

    The plan is empty exactly when the current configuration is the desired
    one. Raise ProxyInvalid for a bad route or setting.
    """
    desired = build_config(routes, settings)
    before, after = served_routes(current), served_routes(desired)
    changes: list[RouteChange] = []
    for domain in sorted(before.keys() | after.keys()):
        if domain not in before:
            changes.append(RouteChange("add", domain, after[domain]))
        elif domain not in after:
            changes.append(RouteChange("remove", domain, None, before[domain]))
        elif before[domain] != after[domain]:
            changes.append(RouteChange("change", domain, after[domain], before[domain]))
    current_view, desired_view = _settings_view(current), _settings_view(desired)
    settings_changed = [name for name in desired_view
                        if current_view.get(name) != desired_view[name]]
    if not changes and not settings_changed and dict(current) != desired:
        # The same domains and upstreams, yet routes differ (a handler edited by hand).
        settings_changed.append("other")
    return ProxyPlan(tuple(changes), tuple(settings_changed), desired)


# -- the admin API ------------------------------------------------------------------------------


@runtime_checkable
class ProxyAdmin(Protocol):
    """What :func:`sync` needs of Caddy: read its configuration and load a new one; and what
    the pages need: its own authority's root, and why a certificate is missing."""

    def read_config(self) -> dict[str, Any]: ...

    def load(self, config: Mapping[str, Any]) -> None: ...

    def root_certificate(self) -> str: ...

    def certificate_failure(self, domain: str) -> str | None: ...

    def certificate_served(self, domain: str) -> bool: ...


def certificate_failure_in_log(log_path: Path, domain: str, *,
                               tail_bytes: int = 2_000_000) -> str | None:
    """Given Caddy's JSON log and a domain, return the reason of the last failed attempt to
    obtain its certificate, unless one obtained since succeeded; None when there is none.

    Only the last ``tail_bytes`` of the log are read. A missing log is no failure.
    """
    try:
        with log_path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - tail_bytes))
            text = file.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    failure: str | None = None
    for line in text.splitlines():
        if domain not in line or not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or not str(record.get("logger", "")).startswith("tls"):
            continue
        names = {record.get("identifier"), record.get("domain")}
        error = record.get("error")
        message = str(record.get("msg", ""))
        if domain not in names and not (isinstance(error, str) and f"[{domain}]" in error):
            continue
        if "obtained successfully" in message or message == "certificate obtained":
            failure = None
        elif record.get("level") == "error" and isinstance(error, str):
            failure = error
    return failure


def parse_admin_url(admin_url: str) -> tuple[str, int]:
    """Given the admin API's URL (``http://HOST:PORT``), return (host, port).

    Raise ProxyInvalid for another scheme or a missing port.
    """
    parts = urllib.parse.urlsplit(admin_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None:
        raise ProxyInvalid(f"admin URL {admin_url!r}: expected http://HOST:PORT")
    return parts.hostname, port


def sync(admin: ProxyAdmin, routes: Sequence[Route], settings: ProxySettings, *,
         dry_run: bool = False) -> ProxyPlan:
    """Given an admin API, every route that must exist and the settings, make Caddy serve
    exactly those; return the plan. With ``dry_run``, only plan.

    The configuration is loaded only when the plan is not empty. Raise
    ProxyInvalid (nothing sent), ProxyUnreachable, or ProxyRefused (Caddy keeps
    its previous configuration).
    """
    result = plan(admin.read_config(), routes, settings)
    for change in result.changes:
        logger.info("proxy%s: %s %s %s", " (dry run)" if dry_run else "", change.action,
                    change.domain, change.upstream or change.previous_upstream or "")
    if not result.empty and not dry_run:
        admin.load(result.config)
    return result


#: Where a test's replacement for the real client sits (see :mod:`chaton.adapters`).
slot: Slot[ProxyAdmin] = Slot("caddy", ProxyAdmin)


def use_caddy(replacement: ProxyAdmin | Callable[[Any], ProxyAdmin]
             ) -> AbstractContextManager[ProxyAdmin | Callable[[Any], ProxyAdmin]]:
    """Within the block, every caddy client comes from ``replacement``: a ProxyAdmin, or a
    function of None (there is one proxy) returning one (tests, benchmarks)."""
    return slot.use(replacement)
