"""URLconf of the Django face of tests/integrations/apps.py."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path


def me(request: HttpRequest) -> JsonResponse:
    user = request.user
    return JsonResponse({"sub": str(user) if user.is_authenticated else None})


urlpatterns = [path("me", me), path("admin", me), path("public", me)]
