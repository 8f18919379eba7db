"""The home page's behaviour beyond its manifest: the page itself, from the settings.

Everything a member typed is HTML-escaped; an address is linked only when it
is ``http://`` or ``https://``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

PAGE = "/www/index.html"
_ADDRESS = re.compile(r"^https?://\S+$")


def links(text: str) -> list[tuple[str, str]]:
    """Given the ``links`` setting, return (name, address) pairs. Raise ValueError for an
    entry that is not ``name = http(s)://address``."""
    found = []
    for entry in re.split(r"[;\n]", text):
        if not entry.strip():
            continue
        name, separator, address = entry.partition("=")
        if not separator or not name.strip() or not _ADDRESS.match(address.strip()):
            raise ValueError(f"{entry.strip()!r} is not “name = https://address”")
        found.append((name.strip(), address.strip()))
    return found


def validate(values: Mapping[str, Any]) -> None:
    """Raise ValueError for a list of services that does not read."""
    links(values["links"])


def render_page(values: Mapping[str, Any], domain: str) -> str:
    """Given complete, valid settings, return the page's HTML."""
    title = html.escape(values["title"])
    items = "".join(f'<li><a href="{html.escape(address)}">{html.escape(name)}</a></li>\n'
                    for name, address in links(values["links"]))
    return ("<!doctype html>\n<html>\n<head><meta charset=\"utf-8\">"
            f"<title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n"
            f"<p>{html.escape(values['introduction'])}</p>\n"
            + (f"<ul>\n{items}</ul>\n" if items else "")
            + f"<footer>{html.escape(domain)}</footer>\n</body>\n</html>\n")


def files(values: Mapping[str, Any], context: Mapping[str, str]) -> dict[str, str]:
    """Return the page, written into the container before it starts."""
    return {PAGE: render_page(values, context.get("domain", ""))}
