"""PrivateBin's behaviour beyond its manifest: its ``conf.php`` from the instance's settings.

The image reads no settings from the environment; it reads
``$CONFIG_PATH/conf.php`` (an INI file that PHP must not serve, hence its first
line). The reconciler writes the files :func:`files` returns into the container
before it starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Every expiry PrivateBin knows, shortest first, with its length in seconds (0: never).
EXPIRIES = {"5min": 300, "10min": 600, "1hour": 3600, "1day": 86400, "1week": 604800,
            "1month": 2592000, "1year": 31536000, "never": 0}
_ORDER = list(EXPIRIES)
CONFIG_FILE = "/srv/cfg/conf.php"


def validate(values: Mapping[str, Any]) -> None:
    """Given complete settings, raise ValueError for a default expiry longer than the longest."""
    if _ORDER.index(values["default_expiry"]) > _ORDER.index(values["max_expiry"]):
        raise ValueError(f"the default expiry ({values['default_expiry']}) is longer than the "
                         f"longest one offered ({values['max_expiry']})")


def _ini(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace('"', "") + '"'


def render_config(values: Mapping[str, Any]) -> str:
    """Given complete, valid settings, return the text of ``conf.php``."""
    offered = _ORDER[:_ORDER.index(values["max_expiry"]) + 1]
    main = {
        "name": "PrivateBin",
        "discussion": values["discussion"],
        "opendiscussion": False,
        "password": True,
        "fileupload": values["file_upload"],
        "burnafterreadingselected": values["burn_after_reading_selected"],
        "defaultformatter": "plaintext",
        "sizelimit": values["max_paste_size_mb"] * 1024 * 1024,
        "languageselection": False,
        "languagedefault": "fr",
        "httpwarning": True,
    }
    lines = [";<?php http_response_code(403); /*", "; Written by Chaton: edits here are lost.",
             "[main]"]
    lines += [f"{name} = {_ini(value)}" for name, value in main.items()]
    lines += ["", "[expire]", f"default = {_ini(values['default_expiry'])}", "", "[expire_options]"]
    lines += [f"{name} = {EXPIRIES[name]}" for name in offered]
    lines += ["", "[formatter_options]", 'plaintext = "Plain Text"',
              'syntaxhighlighting = "Source Code"', 'markdown = "Markdown"',
              "", "[traffic]", "limit = 10", "", "[purge]", "limit = 300", "batchsize = 10",
              "", "[model]", 'class = Filesystem', "", "[model_options]", 'dir = PATH "data"', ""]
    return "\n".join(lines)


def files(values: Mapping[str, Any], context: Mapping[str, str]) -> dict[str, str]:
    """Given an instance's settings and placeholders, return the files to write in its container."""
    return {CONFIG_FILE: render_config(values)}
