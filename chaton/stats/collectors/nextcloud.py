"""Nextcloud: accounts, accounts active in the last 24 hours and files, from the serverinfo
OCS API (``/ocs/v2.php/apps/serverinfo/api/v1/info``) as the ``admin`` account; the space
used comes from the manifest's SQL figure where the database is reachable."""

from __future__ import annotations

from chaton.stats.collectors import CollectorError, Figures, Source, manifest_figures

PATH = "/ocs/v2.php/apps/serverinfo/api/v1/info"


def collect(source: Source) -> Figures:
    data = source.get_json(PATH, params={"format": "json"},
                           auth=("admin", source.need_secret("admin_password")),
                           headers={"OCS-APIRequest": "true"})
    try:
        info = data["ocs"]["data"]
        storage = info["nextcloud"]["storage"]
        found: Figures = {"users": float(storage["num_users"]),
                          "files": float(storage["num_files"]),
                          "active_users": float(info["activeUsers"]["last24hours"])}
    except (KeyError, TypeError) as error:
        raise CollectorError(f"serverinfo answered without {error}") from error
    if source.sql is not None:
        found.update(manifest_figures(source, only=("storage_bytes",)))
    return found
