"""The backups endpoints of the API."""

from ninja import Router

router = Router(tags=["backups"])
