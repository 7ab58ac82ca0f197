"""URLconf of the Django face of the matrix: function views, one of them answering OPTIONS itself."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import include, path

from .apps import IDENTITY_KEY, PROBE_HEADER, record


def _answer(request: HttpRequest, name: str) -> JsonResponse:
    """Settings middleware: ``request.jwt_identity``; the WSGI adapter outside: the environ key."""
    identity = getattr(request, "jwt_identity", None) or request.META.get(IDENTITY_KEY)
    return JsonResponse(record(request.headers.get(PROBE_HEADER), name, identity, request.path_info))


def view(name: str, methods: tuple[str, ...] = ("GET", "HEAD")) -> Any:
    def run(request: HttpRequest, **_: str) -> HttpResponse:
        if request.method not in methods:
            return HttpResponseNotAllowed(methods)
        return _answer(request, name)

    return run


def items(request: HttpRequest, id: str) -> HttpResponse:
    """One view per URL, switching on the method (Django's function-view style)."""
    if request.method == "DELETE":
        return _answer(request, "item_delete")
    return view("item_get")(request)


def echo(request: HttpRequest) -> HttpResponse:
    """Answers any method, OPTIONS included, itself."""
    return _answer(request, "admin_echo")


urlpatterns = [
    path("public", view("public")),
    path("admin/panel", view("admin_panel", ("GET", "HEAD", "POST", "DELETE"))),
    path("admin/users/<str:id>", view("admin_user")),
    path("admin/echo", echo),
    path("items/<str:id>", items),
    path("reports/daily", view("report_daily")),
    path("sub/", include(([path("secret", view("sub_secret"))], "sub"))),
]
