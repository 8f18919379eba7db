"""The governance endpoints of the API."""

from ninja import Router

router = Router(tags=["governance"])
