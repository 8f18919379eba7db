"""The services endpoints of the API."""

from ninja import Router

router = Router(tags=["services"])
