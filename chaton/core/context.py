from django.conf import settings
from django.http import HttpRequest


def chaton(request: HttpRequest) -> dict[str, object]:
    """Template context every page gets: the collective's name."""
    return {"collective_name": settings.CHATON.collective_name}
