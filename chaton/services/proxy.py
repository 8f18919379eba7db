"""The reverse proxy: Caddy serves every instance's domain over HTTPS, certificates by ACME
or, with ``proxy.tls = "internal"``, by Caddy's own certificate authority.

The services reconciler calls :func:`sync_proxy` with every :class:`Route`
(domain → ``host:port``) that must exist; the configured Caddy
(``settings.CHATON.proxy``) is made to serve exactly those, through its admin
API (:mod:`chaton.adapters.caddy`). Caddy's ``/load`` is atomic: a proxy that is
down or refuses the configuration leaves the previous one serving, and the
next sync tries again with the whole desired state.

Certificates live in ``data_dir/caddy/storage``; a managed Caddy (``chaton
serve`` with ``proxy.managed``) runs from ``data_dir/caddy``. Tests and
benchmarks route every call to another admin API with
:func:`chaton.adapters.caddy.use_caddy`.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _

from chaton.adapters import caddy
from chaton.adapters.caddy import ProxyAdmin, ProxyPlan, Route, RouteChange
from chaton.adapters.caddy.client import CaddyAdmin
from chaton.adapters.caddy.server import ManagedCaddy
from chaton.core.errors import ChatonError, Conflict, InvalidInput
from chaton.project.config import ConfigError

__all__ = ["ProxyRejected", "ProxyUnavailable", "Route", "certificate_failure", "describe",
           "managed_caddy", "plan_proxy", "root_certificate", "sync_proxy",
           "uses_internal_ca"]

logger = logging.getLogger("chaton.proxy")

#: One sync at a time in this process: two reads before two loads would each report the
#: same changes, and the older desired state could be loaded last.
_sync_lock = threading.Lock()


class ProxyUnavailable(ChatonError, ConnectionError):
    """Caddy's admin API does not answer: nothing was changed."""

    code = "proxy_unavailable"
    status = 503


class ProxyRejected(ChatonError):
    """Caddy refused the configuration: it keeps serving the previous one."""

    code = "proxy_refused"
    status = 502


def caddy_directory() -> Path:
    """Return the folder of Chaton's own Caddy and of its certificates."""
    return Path(settings.DATA_DIR) / "caddy"


def storage_directory() -> Path:
    """Return where Caddy keeps certificates and ACME accounts."""
    return caddy_directory() / "storage"


def proxy_settings() -> caddy.ProxySettings:
    """Return the proxy's settings from ``settings.CHATON.proxy`` and the data directory.

    Raise InvalidInput when the admin URL is not ``http://HOST:PORT``.
    """
    config = settings.CHATON.proxy
    try:
        host, port = caddy.parse_admin_url(config.admin_url)
    except caddy.ProxyInvalid:
        raise InvalidInput(_("The proxy's admin URL “%(url)s” is not http://HOST:PORT.")
                           % {"url": config.admin_url}, field="admin_url") from None
    admin_listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if config.tls not in caddy.TLS_MODES:
        raise InvalidInput(_("The proxy's tls setting “%(value)s” is neither “acme” nor "
                             "“internal”.") % {"value": config.tls}, field="tls")
    return caddy.ProxySettings(
        admin_listen=admin_listen, http_port=config.http_port, https_port=config.https_port,
        acme_ca=config.acme_ca, acme_ca_root=config.acme_ca_root,
        acme_email=config.acme_email, storage_root=str(storage_directory().absolute()),
        listen_host=config.listen_host, tls=config.tls,
        access_log=str(access_log_path().absolute()) if config.managed else "",
    )


def access_log_path() -> Path:
    """Return the file a managed Caddy writes its access log to (read by usage statistics)."""
    return caddy_directory() / "access.log"


def uses_internal_ca() -> bool:
    """Return whether certificates come from Caddy's own authority (``proxy.tls``)."""
    return bool(settings.CHATON.proxy.tls == "internal")


def log_path() -> Path | None:
    """Return the file Caddy logs to: ``proxy.log_file``, else the managed Caddy's log."""
    config = settings.CHATON.proxy
    if config.log_file:
        return Path(config.log_file)
    if config.managed:
        return caddy_directory() / "caddy.log"
    return None


def proxy_admin() -> ProxyAdmin:
    """Return the admin API every call goes to: :func:`~chaton.adapters.caddy.use_caddy`'s,
    else the configured one."""
    replacement = caddy.slot.current()
    if replacement is not None:
        return replacement
    return CaddyAdmin(settings.CHATON.proxy.admin_url, log_path=log_path())


def root_certificate() -> str:
    """Return the PEM root of the proxy's own certificate authority (``tls = "internal"``).

    Raise ProxyUnavailable when Caddy does not answer, ProxyRejected when it has
    no authority of its own yet (no configuration has used it).
    """
    try:
        return proxy_admin().root_certificate()
    except caddy.ProxyUnreachable as error:
        raise ProxyUnavailable(_("The reverse proxy (Caddy) cannot be reached: %(error)s.")
                               % {"error": error}) from None
    except caddy.ProxyRefused as error:
        raise ProxyRejected(_("The reverse proxy has no certificate authority yet: %(error)s")
                            % {"error": error}) from None


def wait_for_certificate(domain: str, timeout: float) -> tuple[bool, str | None]:
    """Given a domain just routed, wait until Caddy presents a certificate for it, Caddy
    says why it could not get one, or ``timeout`` seconds pass.

    Return (served, failure): (True, None) once a certificate is served; (False,
    reason) when it failed (or the proxy cannot be asked); (False, None) when it
    is still being obtained at the deadline.
    """
    admin = proxy_admin()
    deadline = time.monotonic() + timeout
    while True:
        try:
            if admin.certificate_served(domain):
                return True, None
        except caddy.CaddyError as error:
            return False, str(error)
        failure = admin.certificate_failure(domain)
        if failure is not None:
            return False, failure
        if time.monotonic() >= deadline:
            return False, None
        time.sleep(0.5)


def certificate_failure(domain: str) -> str | None:
    """Return Caddy's reason why ``domain`` has no certificate (its last failed attempt), or
    None when none failed since the last success, or when Caddy's log is out of reach."""
    return proxy_admin().certificate_failure(domain)


def _checked(routes: Sequence[Route]) -> list[Route]:
    """Given routes, return them checked. Raise InvalidInput for a bad domain or upstream,
    Conflict for one domain routed to two upstreams."""
    upstream_of: dict[str, str] = {}
    for route in routes:
        if caddy.domain_problem(route.domain):
            raise InvalidInput(_("“%(domain)s” is not a domain name the proxy can serve.")
                               % {"domain": route.domain}, field="domain")
        if caddy.upstream_problem(route.upstream):
            raise InvalidInput(_("“%(upstream)s” is not an address HOST:PORT the proxy can "
                                 "forward to.") % {"upstream": route.upstream}, field="upstream")
        known = upstream_of.setdefault(route.domain, route.upstream)
        if known != route.upstream:
            raise Conflict(_("The domain %(domain)s is routed to two places: %(first)s and "
                             "%(second)s.") % {"domain": route.domain, "first": known,
                                               "second": route.upstream}, field="domain")
    return list(routes)


def _run(routes: Sequence[Route], dry_run: bool) -> ProxyPlan:
    """Plan, and unless ``dry_run`` apply; turn the adapter's errors into ChatonErrors."""
    checked = _checked(routes)
    admin = proxy_admin()
    try:
        with _sync_lock:
            return caddy.sync(admin, checked, proxy_settings(), dry_run=dry_run)
    except caddy.ProxyUnreachable as error:
        raise ProxyUnavailable(_("The reverse proxy (Caddy) cannot be reached: %(error)s. "
                                 "Nothing was changed.") % {"error": error}) from None
    except caddy.ProxyRefused as error:
        raise ProxyRejected(_("The reverse proxy (Caddy) refused the new configuration and "
                              "keeps the previous one: %(error)s") % {"error": error}) from None
    except caddy.ProxyInvalid as error:
        raise InvalidInput(_("The proxy settings cannot be used: %(error)s")
                           % {"error": error}) from None


def plan_proxy(routes: Sequence[Route]) -> ProxyPlan:
    """Given every route that must exist, return what syncing them would change.

    Raise InvalidInput, Conflict, ProxyUnavailable or ProxyRejected.
    """
    return _run(routes, dry_run=True)


def sync_proxy(routes: Sequence[Route], *, dry_run: bool = False) -> list[str]:
    """Given every route that must exist, make Caddy serve exactly those; return the changes.

    The changes are lines for people (translated), empty when Caddy already
    serves exactly these routes; with ``dry_run`` nothing is loaded. Raise
    InvalidInput for a bad domain or upstream, Conflict for a domain routed
    twice, ProxyUnavailable when Caddy does not answer, ProxyRejected when it
    refuses the configuration (it keeps the previous one then).
    """
    return describe(_run(routes, dry_run))


_SETTING_NAMES = {
    "admin": lambda: _("the admin API's address"),
    "ports": lambda: _("the HTTP and HTTPS ports"),
    "tls": lambda: _("the certificate authority"),
    "storage": lambda: _("the certificate storage"),
    "other": lambda: _("the rest of the configuration"),
}


def _describe_change(change: RouteChange) -> str:
    values = {"domain": change.domain, "upstream": change.upstream or "",
              "previous": change.previous_upstream or "?"}
    if change.action == "add":
        return _("Route added: https://%(domain)s → %(upstream)s") % values
    if change.action == "remove":
        return _("Route removed: https://%(domain)s (was → %(previous)s)") % values
    return _("Route changed: https://%(domain)s → %(upstream)s (was %(previous)s)") % values


def describe(plan: ProxyPlan) -> list[str]:
    """Given a proxy plan, return one translated line per change (none for an empty plan)."""
    lines = [_describe_change(change) for change in plan.changes]
    lines += [_("Proxy setting changed: %(setting)s") % {"setting": _SETTING_NAMES[name]()}
              for name in plan.settings_changed]
    return lines


def managed_caddy() -> ManagedCaddy:
    """Return (not started) the Caddy Chaton runs in ``data_dir/caddy``.

    Raise ConfigError when ``proxy.admin_url`` is not ``http://127.0.0.1:PORT``,
    the only address a managed Caddy's admin API listens on.
    """
    admin_url = settings.CHATON.proxy.admin_url
    url = urllib.parse.urlsplit(admin_url)
    try:
        port = url.port
    except ValueError:
        port = None
    if url.scheme != "http" or url.hostname != "127.0.0.1" or port is None:
        raise ConfigError(f"proxy.admin_url = {admin_url!r}: a managed Caddy's admin API "
                          "listens on http://127.0.0.1:PORT; set proxy.managed = false for "
                          "another Caddy")
    return ManagedCaddy(caddy_directory(), admin_port=port)
