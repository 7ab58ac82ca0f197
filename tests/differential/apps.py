"""The same route table on Starlette, Flask and Django (FastAPI, Litestar: their own modules),
behind the middleware, one copy per matrix mode; the shared pieces every app uses.

Each factory is what a server process imports (``uvicorn --factory`` or gunicorn's ``module:f()``).
Every handler answers ``{"handler": name, "sub": subject}`` and records that it ran in
``$DIFF_RUNS/<x-probe header>``, so the test can tell "refused before the app" from "a handler
ran" even for HEAD and WebSocket answers, and across processes.

Routes: ``/public``; ``/admin/panel`` (GET, POST, DELETE); ``/admin/users/{id}``;
``/admin/echo`` (GET and an OPTIONS the handler answers itself); ``/items/{id}`` (GET, DELETE);
``/reports/daily`` (GET); a mounted sub-app at ``/sub`` with ``/secret``; WebSocket ``/ws/admin``.
Every app has its own CORS layer *inside* the middleware, answering true preflights.

Why one process holds every mode: starting a dozen servers per mode would cost more than the whole
matrix; ``x-matrix-mode`` picks which middleware-wrapped copy answers, and the middleware itself
never sees a different request because of it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

from jwt_middleware import Authenticator, Config, Issuer, JWTMiddleware, StaticKeys

from .matrix import APP_HEADER, MODES, ORIGIN, PREFIX, RULES, Mode
from .tokens import AUDIENCE, ISSUER

MODE_HEADER = "x-matrix-mode"
PROBE_HEADER = "x-probe"
IDENTITY_KEY = "jwt_middleware.identity"
_STARTS = frozenset({"http.response.start", "websocket.http.response.start", "websocket.accept"})
_PROBE = re.compile(r"[0-9a-f]{32}")
_CORS_HEADERS = {"Access-Control-Allow-Origin": ORIGIN, "Access-Control-Allow-Methods": "GET, POST, DELETE"}


def config(mode: Mode) -> Config:
    """The one rule set, under one mode's path and preflight handling."""
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(json.loads(os.environ["DIFF_JWKS"])))
    return Config(
        issuers=(issuer,), audience=AUDIENCE, rules=RULES,
        path_normalization=mode.normalization, preflight=mode.preflight,
    )


def authenticators() -> dict[str, Authenticator]:
    return {mode.name: Authenticator(config(mode)) for mode in MODES}


def record(probe: str | None, handler: str, identity: Any, path: str) -> dict[str, Any]:
    """Write down that ``handler`` ran (before answering) and return its JSON body."""
    subject = getattr(identity, "subject", None)
    name = probe if probe is not None and _PROBE.fullmatch(probe) else "no-probe"
    Path(os.environ["DIFF_RUNS"], name).write_text(json.dumps({"handler": handler, "subject": subject, "path": path}))
    return {"handler": handler, "sub": subject}


def is_preflight(method: str, headers: Any) -> bool:
    """A CORS preflight as the Fetch standard sends it (what each app's CORS layer answers)."""
    return method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


class ByMode:
    """ASGI: hand each request to the copy of the app wrapped for its ``x-matrix-mode``.

    Every response the app stack starts carries ``x-matrix-app``; an exception from it becomes
    a marked 500. So an unmarked answer is the server's own (its parser refused the request).
    """

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = {name.encode(): app for name, app in apps.items()}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = False

        async def marked(message: Any) -> None:
            nonlocal started
            if message["type"] in _STARTS:
                started = True
                message = {**message, "headers": [*message.get("headers", ()), (APP_HEADER.encode(), b"1")]}
            await send(message)

        wanted = dict(scope.get("headers", ())).get(MODE_HEADER.encode(), b"")
        try:
            await self.apps[wanted](scope, receive, marked)
        except Exception:
            if started or scope["type"] != "http":
                raise
            await marked({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": traceback.format_exc()[-300:].encode()})


class WSGIByMode:
    """WSGI: the same choice, from ``HTTP_X_MATRIX_MODE``, and the same marking."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        def marked(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, (APP_HEADER, "1")], exc_info)

        try:
            return self.apps[environ.get("HTTP_X_MATRIX_MODE", "")](environ, marked)
        except Exception:
            marked("500 Internal Server Error", [("content-type", "text/plain")], sys.exc_info())
            return [traceback.format_exc()[-300:].encode()]


# -- Starlette ------------------------------------------------------------------------------------


def _starlette_routes() -> list[Any]:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.websockets import WebSocket

    def endpoint(name: str) -> Any:
        async def run(request: Request) -> JSONResponse:
            scope = request.scope
            return JSONResponse(record(request.headers.get(PROBE_HEADER), name, scope.get(IDENTITY_KEY), scope["path"]))

        return run

    async def ws_admin(websocket: WebSocket) -> None:
        scope = websocket.scope
        record(websocket.headers.get(PROBE_HEADER), "ws_admin", scope.get(IDENTITY_KEY), scope["path"])
        await websocket.accept()
        await websocket.close()

    sub = Starlette(routes=[Route("/secret", endpoint("sub_secret"))])
    return [
        Route("/public", endpoint("public")),
        Route("/admin/panel", endpoint("admin_panel"), methods=["GET", "POST", "DELETE"]),
        Route("/admin/users/{id}", endpoint("admin_user")),
        Route("/admin/echo", endpoint("admin_echo"), methods=["GET", "OPTIONS"]),
        Route("/items/{id}", endpoint("item_get"), methods=["GET"]),
        Route("/items/{id}", endpoint("item_delete"), methods=["DELETE"]),
        Route("/reports/daily", endpoint("report_daily"), methods=["GET"]),
        Mount("/sub", app=sub),
        WebSocketRoute("/ws/admin", ws_admin),
    ]


def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware

    cors = Middleware(CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["*"], allow_headers=["*"])
    return Starlette(routes=_starlette_routes(), middleware=[cors])


def starlette() -> Any:
    return ByMode({name: JWTMiddleware(_starlette_app(), auth) for name, auth in authenticators().items()})


def starlette_mounted() -> Any:
    """The protected app as a Starlette ``Mount`` at PREFIX: the middleware sees ``root_path``."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    def outer(auth: Authenticator) -> Any:
        return Starlette(routes=[Mount(PREFIX, app=JWTMiddleware(_starlette_app(), auth))])

    return ByMode({name: outer(auth) for name, auth in authenticators().items()})


# -- Flask ----------------------------------------------------------------------------------------


def _flask_app(auth: Authenticator) -> Any:
    from flask import Flask, Response, request
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from jwt_middleware.integrations.flask import JWTFlask

    def view(name: str) -> Any:
        def run(**_: str) -> dict[str, Any]:
            environ = request.environ
            return record(request.headers.get(PROBE_HEADER), name, environ.get(IDENTITY_KEY), environ["PATH_INFO"])

        run.__name__ = name
        return run

    def cors() -> Response | None:  # the app's own CORS layer: answers a preflight before any view
        return Response(status=204, headers=_CORS_HEADERS) if is_preflight(request.method, request.headers) else None

    app, sub = Flask("differential"), Flask("differential_sub")
    app.add_url_rule("/public", view_func=view("public"))
    app.add_url_rule("/admin/panel", view_func=view("admin_panel"), methods=["GET", "POST", "DELETE"])
    app.add_url_rule("/admin/users/<id>", view_func=view("admin_user"))
    app.add_url_rule("/admin/echo", view_func=view("admin_echo"), methods=["GET", "OPTIONS"],
                     provide_automatic_options=False)
    app.add_url_rule("/items/<id>", view_func=view("item_get"), methods=["GET"])
    app.add_url_rule("/items/<id>", view_func=view("item_delete"), methods=["DELETE"])
    app.add_url_rule("/reports/daily", view_func=view("report_daily"))
    sub.add_url_rule("/secret", view_func=view("sub_secret"))
    for each in (app, sub):
        each.before_request(cors)
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/sub": sub.wsgi_app})  # type: ignore[method-assign]
    JWTFlask(app, auth)
    return app


def flask() -> Any:
    return WSGIByMode({name: _flask_app(auth) for name, auth in authenticators().items()})


# -- Django (its settings MIDDLEWARE; URLconf in django_urls.py) ----------------------------------


class DjangoCORS:
    """The app's own CORS layer (as django-cors-headers does): answers a preflight before any view."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        from django.http import HttpResponse

        if is_preflight(request.method, request.headers):
            response = HttpResponse(status=204)
            for name, value in _CORS_HEADERS.items():
                response.headers[name] = value
            return response
        return self.get_response(request)


def _django_setup(*, middleware: bool) -> None:
    """Django settings; ``middleware``: the JWT middleware in ``settings.MIDDLEWARE`` (else the
    WSGI adapter wraps Django's handler from outside)."""
    import django
    from django.conf import settings

    jwt = ["jwt_middleware.integrations.django.JWTAuthenticationMiddleware"] if middleware else []
    settings.configure(
        DEBUG=False,
        SECRET_KEY="differential-tests-only-" + "x" * 40,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="tests.differential.django_urls",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        MIDDLEWARE=[*jwt, "tests.differential.apps.DjangoCORS"],
    )
    django.setup()


def _django(handler_class: Any) -> dict[str, Any]:
    """One Django handler per mode: each loads its middleware with that mode's Authenticator."""
    from django.conf import settings

    _django_setup(middleware=True)
    handlers = {}
    for name, auth in authenticators().items():
        settings.JWT_MIDDLEWARE_AUTHENTICATOR = auth
        handlers[name] = handler_class()
    return handlers


def django_wsgi() -> Any:
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIByMode(_django(WSGIHandler))


def django_wsgi_wrapped() -> Any:
    """Django's WSGI handler inside :class:`~jwt_middleware.WSGIJWTMiddleware` (no settings middleware)."""
    from django.core.handlers.wsgi import WSGIHandler

    from jwt_middleware import WSGIJWTMiddleware

    _django_setup(middleware=False)
    return WSGIByMode({name: WSGIJWTMiddleware(WSGIHandler(), auth) for name, auth in authenticators().items()})


def django_asgi() -> Any:
    from django.core.handlers.asgi import ASGIHandler

    return ByMode(_django(ASGIHandler))
