from django.http import HttpRequest
from ninja import Router

router = Router(tags=["example"])


@router.get("/ping", auth=None)
def ping(request: HttpRequest) -> dict[str, str]:
    """Answer that the example app is mounted."""
    return {"example": "pong"}
