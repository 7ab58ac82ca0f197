"""The Django settings middleware decides on the path Django routes (``request.path_info``).

Every test is a request that must be refused, or must reach the handler the matching rule
protects, through Django's own test clients (``Client``: WSGIRequest from an environ with any
SCRIPT_NAME; ``AsyncClient``: ASGIRequest from a scope) or Django's ASGI handler under httpx
(``root_path``, ``raw_path``). This module is the URLconf while a test runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import httpx
import pytest

from jwt_middleware import Authenticator, Config, Issuer, Rule, StaticKeys
from jwt_middleware.testing import mint, public_jwks
from jwt_middleware.wsgi import ORIGINAL_PATH_KEY

from . import apps

RULES = (
    Rule("/public", access="public"),
    Rule("/admin/*", scopes=("admin",)),
    Rule("/items/{id}", methods=("DELETE",), scopes=("admin",)),
    Rule("/items/{id}", access="optional"),
)
#: each one normalises to an admin route: refused (400) under "refuse", that route under "rewrite"
NORMALISABLE = {
    "//admin/panel": "/admin/panel",
    "/admin//panel": "/admin/panel",
    "/./admin/panel": "/admin/panel",
    "/public/../admin/panel": "/admin/panel",
    "///admin/users/7": "/admin/users/7",
}
Normalization = Literal["refuse", "rewrite"]


def authenticator(normalization: Normalization = "refuse", **options: Any) -> Authenticator:
    issuer = Issuer(apps.ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(apps.KEY)))
    rules = options.pop("rules", RULES)
    return Authenticator(Config(issuers=(issuer,), audience="api", rules=rules, clock=apps.CLOCK,
                                path_normalization=normalization, **options))


def bearer(scope: str) -> str:
    return "Bearer " + mint(apps.KEY, {"scope": scope}, issuer=apps.ISSUER, now=apps.CLOCK.now)


READ, ADMIN = bearer("read"), bearer("admin")


# -- the URLconf: each view answers what Django routed --------------------------------------------


def _view(name: str) -> Any:
    def run(request: Any, **_: str) -> Any:
        from django.http import JsonResponse

        meta = request.META
        return JsonResponse({
            "handler": name, "path_info": request.path_info, "path": request.path, "meta": meta["PATH_INFO"],
            "raw_uri": meta.get("RAW_URI"), "original": meta.get(ORIGINAL_PATH_KEY),
            "scope_path": request.scope["path"] if hasattr(request, "scope") else None,
        })

    return run


def _urlpatterns() -> list[Any]:
    apps.django_wsgi_app()  # settings configured once per process
    from django.urls import path

    return [
        path("public", _view("public")),
        path("admin/panel", _view("admin_panel")),
        path("admin/users/<str:id>", _view("admin_user")),
        path("items/<str:id>", _view("item")),
    ]


urlpatterns = _urlpatterns()


@contextmanager
def settings_for(auth: Authenticator, **more: Any) -> Iterator[None]:
    from django.test import override_settings

    with override_settings(ROOT_URLCONF=__name__, JWT_MIDDLEWARE_AUTHENTICATOR=auth, **more):
        yield


def wsgi(auth: Authenticator, method: str, path: str, authorization: str | None = None, **environ: Any) -> Any:
    """One request through Django's WSGI test client (a fresh handler: the middleware reads ``auth``)."""
    from django.test import Client

    if authorization is not None:
        environ["HTTP_AUTHORIZATION"] = authorization
    with settings_for(auth):
        return Client().generic(method, _absolute(path), **environ)


async def asgi(auth: Authenticator, method: str, path: str, authorization: str | None = None,
               **settings: Any) -> Any:
    """One request through Django's async test client (ASGIRequest, the middleware in async mode)."""
    from django.test import AsyncClient

    headers = {"authorization": authorization} if authorization is not None else {}
    with settings_for(auth, **settings):
        return await AsyncClient().generic(method, _absolute(path), headers=headers)


def _absolute(path: str) -> str:
    """Why: the test clients split their argument as a URL, and ``//admin/panel`` alone names host ``admin``."""
    return "http://testserver" + path


async def asgi_root(auth: Authenticator, target: str, authorization: str, root_path: str) -> httpx.Response:
    """One request through Django's ASGI handler under httpx: a real ``root_path`` and ``raw_path``."""
    from django.core.asgi import get_asgi_application

    with settings_for(auth):
        transport = httpx.ASGITransport(app=get_asgi_application(), root_path=root_path)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(target, headers={"authorization": authorization})


def ran(response: Any) -> dict[str, Any]:
    """What the handler saw; fails unless a handler answered."""
    assert response.status_code == 200, (response.status_code, response.content)
    seen: dict[str, Any] = json.loads(response.content)
    return seen


def refused(response: Any, status: int, error: str) -> None:
    """Refused by the middleware (no handler ran) with the RFC 6750 challenge."""
    assert response.status_code == status, (response.status_code, response.content)
    assert f'error="{error}"' in response.headers["www-authenticate"]
    assert b"handler" not in response.content


# -- SCRIPT_NAME / root_path: rules judge the path below the mount point ----------------------------


@pytest.mark.parametrize(("method", "path"), [("GET", "/admin/panel"), ("DELETE", "/items/7"),
                                               ("GET", "/admin/users/7")])
def test_read_token_cannot_reach_admin_handlers_below_script_name(method: str, path: str) -> None:
    auth = authenticator()
    refused(wsgi(auth, method, path, READ, SCRIPT_NAME="/api"), 403, "insufficient_scope")
    seen = ran(wsgi(auth, method, path, ADMIN, SCRIPT_NAME="/api"))
    assert seen["path_info"] == path and seen["path"] == "/api" + path


def test_match_full_path_judges_script_name_and_path() -> None:
    auth = authenticator(rules=(Rule("/api/admin/*", scopes=("admin",)),), match_full_path=True)
    refused(wsgi(auth, "GET", "/admin/panel", READ, SCRIPT_NAME="/api"), 403, "insufficient_scope")
    assert ran(wsgi(auth, "GET", "/admin/panel", ADMIN, SCRIPT_NAME="/api"))["handler"] == "admin_panel"


async def test_read_token_cannot_reach_admin_below_asgi_root_path() -> None:
    auth = authenticator()
    refused(await asgi_root(auth, "/api/admin/panel", READ, "/api"), 403, "insufficient_scope")
    assert ran(await asgi_root(auth, "/api/admin/panel", ADMIN, "/api"))["path_info"] == "/admin/panel"


async def test_read_token_cannot_reach_admin_below_force_script_name_under_asgi() -> None:
    # Django strips FORCE_SCRIPT_NAME from the scope's path itself; the scope has no root_path.
    auth = authenticator()
    refused(await asgi(auth, "GET", "/api/admin/panel", READ, FORCE_SCRIPT_NAME="/api"), 403, "insufficient_scope")
    seen = ran(await asgi(auth, "GET", "/api/admin/panel", ADMIN, FORCE_SCRIPT_NAME="/api"))
    assert seen["path_info"] == "/admin/panel"


# -- path_normalization="refuse": a non-canonical path is a 400 before any rule ---------------------


@pytest.mark.parametrize("script_name", ["", "/api"])
@pytest.mark.parametrize("path", list(NORMALISABLE))
def test_wsgi_refuses_a_non_canonical_path(path: str, script_name: str) -> None:
    for authorization in (READ, ADMIN, None):
        refused(wsgi(authenticator(), "GET", path, authorization, SCRIPT_NAME=script_name), 400, "invalid_request")


@pytest.mark.parametrize("path", list(NORMALISABLE))
async def test_asgi_refuses_a_non_canonical_path(path: str) -> None:
    refused(await asgi(authenticator(), "GET", path, READ), 400, "invalid_request")


# -- ambiguous paths: 400 in either mode ----------------------------------------------------------

#: (PATH_INFO as Django's test client decodes the target, RAW_URI as gunicorn passes it on)
AMBIGUOUS = {
    "backslash": ("/admin\\panel", None),
    "nul": ("/admin/panel%00", "/admin/panel%00"),
    "encoded-slash": ("/admin%2Fpanel", "/admin%2Fpanel"),
    "encoded-backslash": ("/admin%5Cpanel", "/admin%5Cpanel"),
    "not-utf8": ("/admin/%ff", "/admin/%ff"),
}


@pytest.mark.parametrize("normalization", ["refuse", "rewrite"])
@pytest.mark.parametrize("case", list(AMBIGUOUS))
def test_wsgi_refuses_an_ambiguous_path(case: str, normalization: Normalization) -> None:
    target, raw = AMBIGUOUS[case]
    environ = {"RAW_URI": "/api" + raw} if raw is not None else {}
    response = wsgi(authenticator(normalization), "GET", target, ADMIN, SCRIPT_NAME="/api", **environ)
    refused(response, 400, "invalid_request")


@pytest.mark.parametrize("normalization", ["refuse", "rewrite"])
async def test_asgi_refuses_an_encoded_slash_in_raw_path(normalization: Normalization) -> None:
    response = await asgi_root(authenticator(normalization), "/api/admin%2Fpanel", ADMIN, "/api")
    refused(response, 400, "invalid_request")


# -- path_normalization="rewrite": Django routes the canonical path the rules judged ----------------


@pytest.mark.parametrize("path", list(NORMALISABLE))
def test_wsgi_rewrite_hands_django_the_canonical_path(path: str) -> None:
    auth, canonical = authenticator("rewrite"), NORMALISABLE[path]
    raw_uri = {"RAW_URI": "/api" + path + "?q=1"}
    refused(wsgi(auth, "GET", path, READ, SCRIPT_NAME="/api", **raw_uri), 403, "insufficient_scope")
    seen = ran(wsgi(auth, "GET", path, ADMIN, SCRIPT_NAME="/api", **raw_uri))
    assert seen["handler"] in ("admin_panel", "admin_user")
    assert seen["path_info"] == seen["meta"] == canonical and seen["path"] == "/api" + canonical
    assert seen["raw_uri"] == "/api" + canonical + "?q=1"
    assert seen["original"]["RAW_URI"] == "/api" + path + "?q=1"


@pytest.mark.parametrize("path", list(NORMALISABLE))
async def test_asgi_rewrite_hands_django_the_canonical_path(path: str) -> None:
    auth, canonical = authenticator("rewrite"), NORMALISABLE[path]
    refused(await asgi(auth, "GET", path, READ), 403, "insufficient_scope")
    seen = ran(await asgi(auth, "GET", path, ADMIN))
    assert seen["handler"] in ("admin_panel", "admin_user")
    assert seen["path_info"] == seen["meta"] == seen["path"] == seen["scope_path"] == canonical


async def test_asgi_rewrite_below_root_path_keeps_the_prefix() -> None:
    auth = authenticator("rewrite")
    refused(await asgi_root(auth, "http://testserver/api/admin//panel", READ, "/api"), 403, "insufficient_scope")
    seen = ran(await asgi_root(auth, "http://testserver/api/admin//panel", ADMIN, "/api"))
    assert seen["path_info"] == "/admin/panel" and seen["path"] == seen["scope_path"] == "/api/admin/panel"


def test_non_ascii_path_is_judged_and_routed_as_the_same_text() -> None:
    # Django's META holds decoded text; the view must not decode it a second time.
    script = "/café".encode().decode("latin-1")  # PEP 3333 transport form, as a server passes it
    seen = ran(wsgi(authenticator(), "GET", "/items/%C3%A9t%C3%A9", None, SCRIPT_NAME=script))
    assert seen["handler"] == "item" and seen["path_info"] == "/items/été" and seen["path"] == "/café/items/été"
    refused(wsgi(authenticator(), "DELETE", "/items/%C3%A9t%C3%A9", READ), 403, "insufficient_scope")
