"""URLconf of the Django app tests/wsgi/test_paths.py serves under a SCRIPT_NAME."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path


def _view(name: str):  # type: ignore[no-untyped-def]
    def view(request: HttpRequest, **params: object) -> JsonResponse:
        return JsonResponse({"route": name, "path_info": request.path_info, "script_name": request.META["SCRIPT_NAME"]})

    return view


urlpatterns = [
    path("admin/<path:rest>", _view("admin")),
    path("public", _view("public")),
    path("items/<int:id>", _view("item")),
]
