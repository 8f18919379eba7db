"""The services as they are now, and their diagram: an SVG drawn on the server.

:func:`landscape` reads the hosts (each engine asked who it is), the
instances with their live state (one snapshot per host) and the proxy's
settings; :func:`draw` turns that into the drawing collectives keep in their
wiki — people → the reverse proxy → each host, its instances inside with
their domains, an arrow from the proxy to every instance it routes to. No
JavaScript: the same SVG is shown on the overview page and downloaded as a
file (``standalone``). Every text in it is escaped; a text too long for its
box is shortened with "…" and given whole in a tooltip (``<title>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.http import HttpResponse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from chaton.adapters.docker import DockerError
from chaton.services import queries
from chaton.services.engine import engine_for
from chaton.services.models import DesiredState, Host
from chaton.services.queries import InstanceWithState

# -- what there is -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HostStatus:
    """A host and what its engine said when asked: its version and whether it manages a
    Swarm, or why it did not answer."""

    host: Host
    reachable: bool
    version: str = ""
    engine_name: str = ""
    swarm_manager: bool = False
    #: The engine's own message (English), and what to do about it, for people.
    error: str = ""
    advice: str = ""


def host_status(host: Host) -> HostStatus:
    """Given a host, ask its engine who it is; return the answer, or the error and what to
    do about it (never raise)."""
    from chaton.services.engine import unreachable_advice

    try:
        info = engine_for(host).info()
    except DockerError as error:
        return HostStatus(host, reachable=False, error=str(error),
                          advice=unreachable_advice(host.docker_url,
                                                    is_default=host.is_default))
    return HostStatus(host, reachable=True, version=info.version, engine_name=info.name,
                      swarm_manager=info.swarm_manager)


def host_statuses(hosts: Iterable[Host] | None = None) -> list[HostStatus]:
    """Return every host (or ``hosts``), by name, each with what its engine says."""
    return [host_status(host) for host in (queries.hosts() if hosts is None else hosts)]


@dataclass(frozen=True)
class Landscape:
    """Everything the diagram draws."""

    hosts: list[HostStatus]
    instances: list[InstanceWithState]
    https_port: int
    acme_ca: str = ""
    #: Instances by host id, in the order they are drawn.
    by_host: dict[int, list[InstanceWithState]] = field(default_factory=dict)


def landscape(hosts: Sequence[HostStatus] | None = None,
              instances: Sequence[InstanceWithState] | None = None) -> Landscape:
    """Return the hosts and instances as they are now (or as already read: ``hosts``,
    ``instances``), with the proxy's settings. Never raise for an engine that does not
    answer: its host says why, its instances are "unreachable"."""
    host_list = list(hosts) if hosts is not None else host_statuses()
    instance_list = list(instances) if instances is not None else queries.instances_with_state()
    by_host: dict[int, list[InstanceWithState]] = {status.host.pk: [] for status in host_list}
    for item in instance_list:
        by_host.setdefault(item.instance.host_id, []).append(item)
    proxy = settings.CHATON.proxy
    return Landscape(host_list, instance_list, https_port=proxy.https_port,
                     acme_ca=proxy.acme_ca, by_host=by_host)


# -- states, for people --------------------------------------------------------------------------


def state_label(state: str) -> str:
    """Given a live state (see :class:`chaton.services.queries.LiveState`), return its label."""
    labels = {
        "running": _("running"), "starting": _("starting"), "unhealthy": _("unhealthy"),
        "stopped": _("stopped"), "missing": _("missing"), "upgrading": _("upgrading"),
        "drift": _("changed by hand"), "off": _("stopped on purpose"),
        "removing": _("being removed"), "unreachable": _("engine unreachable"),
    }
    return labels.get(state, state)


def state_tone(state: str) -> str:
    """Return how a live state looks: ``ok``, ``busy``, ``idle`` or ``bad``."""
    if state == "running":
        return "ok"
    if state in ("starting", "upgrading"):
        return "busy"
    if state in ("off", "removing", "unreachable"):
        return "idle"
    return "bad"


#: (stroke, fill) of each tone, the page's colours.
_TONES = {"ok": ("#2f6f5e", "#e7f4ee"), "busy": ("#b7791f", "#fff6e0"),
          "idle": ("#616e7c", "#eef1f4"), "bad": ("#b42318", "#fdecea")}

# -- drawing -------------------------------------------------------------------------------------

MARGIN = 20
LINE = 16
#: About how wide one character is, at the font sizes used (px).
CHARACTER = 7.0
PEOPLE_WIDTH = 120
PROXY_WIDTH = 210
GAP = 90
INSTANCE_HEIGHT = 62
INSTANCE_GAP = 10
HOST_HEAD = 50
HOST_PADDING = 14
MINIMUM_HOST_WIDTH = 300
MAXIMUM_HOST_WIDTH = 560


def _fit(text: str, width: float, character: float = CHARACTER) -> str:
    """Given a text and the width it has, return it shortened with "…" if it does not fit."""
    room = max(4, int(width / character))
    return text if len(text) <= room else text[:room - 1] + "…"


def _text(x: float, y: float, text: str, width: float, *, size: int = 12, weight: str = "",
          color: str = "#1f2933", anchor: str = "start") -> str:
    """Return a <text> element, shortened to ``width``, the whole text as its tooltip."""
    shown = _fit(text, width, CHARACTER * size / 12)
    weight_attribute = f' font-weight="{weight}"' if weight else ""
    tooltip = f"<title>{escape(text)}</title>" if shown != text else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}"{weight_attribute} '
            f'fill="{color}" text-anchor="{anchor}">{tooltip}{escape(shown)}</text>')


def _instance_lines(item: InstanceWithState) -> tuple[str, str, str]:
    instance = item.instance
    owner = instance.owner
    second = _("%(slug)s · %(application)s · port %(port)d") % {
        "slug": instance.slug, "application": instance.application, "port": instance.port}
    third = state_label(item.live.state)
    if owner is not None:
        third = _("%(state)s · for %(owner)s") % {"state": third, "owner": str(owner)}
    return instance.domain, second, third


def _host_lines(status: HostStatus) -> tuple[str, str]:
    host = status.host
    kind = _("Docker Swarm manager") if host.swarm else _("Docker engine")
    if status.reachable:
        first = _("%(name)s — %(kind)s %(version)s") % {"name": host.name, "kind": kind,
                                                         "version": status.version}
    else:
        first = _("%(name)s — %(kind)s, unreachable") % {"name": host.name, "kind": kind}
    # The engine's message is in the hosts' table, with what to do: not in the drawing too.
    return first, host.docker_url


def draw(view: Landscape, *, standalone: bool = False) -> SafeString:
    """Given the landscape, return the diagram as SVG: an element to put in a page, or with
    ``standalone`` a whole file (an XML declaration first)."""
    host_width = float(MINIMUM_HOST_WIDTH)
    for status in view.hosts:
        first, second = _host_lines(status)
        wanted = max(len(first), len(second)) * CHARACTER + 2 * HOST_PADDING
        for item in view.by_host.get(status.host.pk, []):
            wanted = max(wanted, max(len(line) for line in _instance_lines(item)) * CHARACTER
                         + 4 * HOST_PADDING)
        host_width = max(host_width, min(wanted, MAXIMUM_HOST_WIDTH))
    proxy_x = MARGIN + PEOPLE_WIDTH + GAP * 0.6
    host_x = proxy_x + PROXY_WIDTH + GAP
    width = host_x + host_width + MARGIN

    parts: list[str] = []
    y = float(MARGIN + 28)
    #: Where each arrow of the proxy ends: the left middle of an instance it routes to.
    targets: list[tuple[float, float]] = []
    for status in view.hosts:
        items = view.by_host.get(status.host.pk, [])
        rows = max(1, len(items))
        box_height = (HOST_HEAD + rows * (INSTANCE_HEIGHT + INSTANCE_GAP) + HOST_PADDING
                      - INSTANCE_GAP)
        stroke = "#9aa5b1" if status.reachable else _TONES["bad"][0]
        # An engine that does not answer: a dashed outline, readable without colours.
        dashes = "" if status.reachable else ' stroke-dasharray="6 4"'
        first, second = _host_lines(status)
        parts.append(f'<g class="host"><rect x="{host_x:.1f}" y="{y:.1f}" '
                     f'width="{host_width:.1f}" height="{box_height}" rx="8" fill="#f4f6f8" '
                     f'stroke="{stroke}" stroke-width="1.5"{dashes}/>')
        text_width = host_width - 2 * HOST_PADDING
        parts.append(_text(host_x + HOST_PADDING, y + 20, first, text_width, size=13,
                           weight="600"))
        parts.append(_text(host_x + HOST_PADDING, y + 20 + LINE, second, text_width, size=11,
                           color="#616e7c" if status.reachable else _TONES["bad"][0]))
        inner_x = host_x + HOST_PADDING
        inner_width = host_width - 2 * HOST_PADDING
        row_y = y + HOST_HEAD
        if not items:
            parts.append(_text(inner_x, row_y + 20, _("no instance"), inner_width, size=11,
                               color="#616e7c"))
        for item in items:
            tone = state_tone(item.live.state)
            stroke_color, fill = _TONES[tone]
            domain, second_line, third_line = _instance_lines(item)
            parts.append(f'<g class="instance"><rect x="{inner_x:.1f}" y="{row_y:.1f}" '
                         f'width="{inner_width:.1f}" height="{INSTANCE_HEIGHT}" rx="6" '
                         f'fill="{fill}" stroke="{stroke_color}" stroke-width="1.5"/>')
            text_x, text_width = inner_x + 12, inner_width - 24
            parts.append(_text(text_x, row_y + 19, domain, text_width, size=13, weight="600"))
            parts.append(_text(text_x, row_y + 19 + LINE, second_line, text_width, size=11,
                               color="#3e4c59"))
            parts.append(_text(text_x, row_y + 19 + 2 * LINE, third_line, text_width, size=11,
                               color=stroke_color))
            parts.append("</g>")
            if item.instance.state == DesiredState.RUNNING:
                targets.append((inner_x, row_y + INSTANCE_HEIGHT / 2))
            row_y += INSTANCE_HEIGHT + INSTANCE_GAP
        parts.append("</g>")
        y += box_height + 24
    if not view.hosts:
        parts.append(_text(host_x, y + 20, _("No host yet."), host_width, color="#616e7c"))
        y += 40
    height = max(y + MARGIN, 200.0)

    # People and the proxy, centred on what they serve.
    middle = (MARGIN + 28 + y - 24) / 2 if view.hosts else height / 2
    proxy_height = 3 * LINE + 24
    proxy_y = max(MARGIN + 28, middle - proxy_height / 2)
    proxy_middle = proxy_y + proxy_height / 2
    people = [
        f'<g class="people"><rect x="{MARGIN}" y="{proxy_middle - 22:.1f}" '
        f'width="{PEOPLE_WIDTH}" height="44" rx="22" fill="#ffffff" stroke="#9aa5b1" '
        f'stroke-width="1.5"/>',
        _text(MARGIN + PEOPLE_WIDTH / 2, proxy_middle + 4, _("People"), PEOPLE_WIDTH - 16,
              size=13, weight="600", anchor="middle"), "</g>",
        f'<path d="M {MARGIN + PEOPLE_WIDTH} {proxy_middle:.1f} H {proxy_x - 4:.1f}" '
        f'stroke="#3e4c59" stroke-width="1.5" fill="none" marker-end="url(#arrow)"/>',
        _text(MARGIN + PEOPLE_WIDTH + 8, proxy_middle - 6, _("HTTPS"), GAP * 0.6, size=11,
              color="#3e4c59"),
    ]
    proxy_lines = [_("Reverse proxy (Caddy)"),
                   _("HTTPS on port %(port)d") % {"port": view.https_port},
                   _("certificates by ACME")]
    proxy_box = [f'<g class="proxy"><rect x="{proxy_x:.1f}" y="{proxy_y:.1f}" '
                 f'width="{PROXY_WIDTH}" height="{proxy_height}" rx="8" fill="#2f6f5e"/>']
    for index, line in enumerate(proxy_lines):
        proxy_box.append(_text(proxy_x + 14, proxy_y + 22 + index * LINE, line,
                               PROXY_WIDTH - 28, size=13 if index == 0 else 11,
                               weight="600" if index == 0 else "", color="#ffffff"))
    proxy_box.append("</g>")
    start_x = proxy_x + PROXY_WIDTH
    routes = []
    for target_x, target_y in targets:
        end_x = target_x - 3
        routes.append(f'<path class="route" d="M {start_x:.1f} {proxy_middle:.1f} '
                      f'C {start_x + GAP / 2:.1f} {proxy_middle:.1f}, '
                      f'{end_x - GAP / 2:.1f} {target_y:.1f}, {end_x:.1f} {target_y:.1f}" '
                      f'stroke="#2f6f5e" stroke-width="1.5" fill="none" '
                      f'marker-end="url(#arrow)"/>')

    title = _("Services: %(instances)d instance(s) on %(hosts)d host(s)") % {
        "instances": len(view.instances), "hosts": len(view.hosts)}
    head = [
        '<?xml version="1.0" encoding="UTF-8"?>\n' if standalone else "",
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="service-diagram" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}" '
        f'font-family="system-ui, -apple-system, &quot;Segoe UI&quot;, Roboto, sans-serif">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#2f6f5e"/></marker></defs>',
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        _text(MARGIN, MARGIN + 6, title, width - 2 * MARGIN, size=14, weight="600"),
    ]
    # The routes last: their heads are drawn over the host's box.
    body = "".join(head + people + proxy_box + parts + routes) + "</svg>"
    return mark_safe(body)  # noqa: S308 -- every interpolated text is escaped by _text


def svg_response(svg: str, *, download: bool) -> HttpResponse:
    """Given an SVG document, return it as an HTTP answer (a file to save with ``download``)."""
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    # Opened on its own, the drawing may not run or load anything (its texts are escaped
    # anyway: this is the second lock).
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    if download:
        response["Content-Disposition"] = 'attachment; filename="services.svg"'
    return response
