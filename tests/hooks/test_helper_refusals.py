"""One table: on every framework, a refusal by the middleware (a Rule's scopes) and by the
framework's own helper (no Rule) answer alike: status, challenge and body, with no on_refusal
and with a sync or an async one, and with no exception handler registered by the app. An app's
own handler for ``Refused`` is what routes a refusal to the framework's error handling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from jwt_middleware import Authenticator, JWTMiddleware, Rule
from jwt_middleware.errors import Refusal
from jwt_middleware.request import RequestView
from jwt_middleware.testing import FakeClock

from ._support import NOW, bearer, config, in_mode, token

ADMIN_RULE = (Rule("/admin", scopes=("admin",)),)


def shaper(refusal: Refusal, request: RequestView | None) -> dict[str, Any]:
    return {"title": "refused", "status": refusal.status, "code": refusal.error, "seen_request": request is not None}


def starlette(auth: Authenticator) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from jwt_middleware.integrations.starlette import requires

    async def admin(request: Request) -> PlainTextResponse:
        return PlainTextResponse("admin")

    @requires("admin")
    async def helper(request: Request) -> PlainTextResponse:
        return PlainTextResponse("helper")

    @requires("admin")
    def sync_helper(request: Request) -> PlainTextResponse:
        return PlainTextResponse("helper")

    routes = [Route("/admin", admin), Route("/helper", helper), Route("/sync-helper", sync_helper)]
    return JWTMiddleware(Starlette(routes=routes), auth)


def fastapi_routes() -> Any:
    from fastapi import Depends, FastAPI, Security

    from jwt_middleware.identity import Identity
    from jwt_middleware.integrations.fastapi import jwt_identity, require_scopes

    api = FastAPI()

    @api.get("/admin")
    async def admin() -> str:
        return "admin"

    @api.get("/helper")
    async def helper(identity: Identity = Depends(require_scopes("admin"))) -> str:
        return "helper"

    @api.get("/sync-helper")
    def sync_helper(identity: Identity = Security(jwt_identity, scopes=["admin"])) -> str:
        return "helper"

    return api


def fastapi_wrapped(auth: Authenticator) -> Any:
    return JWTMiddleware(fastapi_routes(), auth)


def fastapi_add_middleware(auth: Authenticator) -> Any:
    api = fastapi_routes()
    api.add_middleware(JWTMiddleware, authenticator=auth)
    return api


def litestar(auth: Authenticator) -> Any:
    from litestar import Litestar, get

    from jwt_middleware.integrations.litestar import require_scopes, wrap

    @get("/admin")
    async def admin() -> str:
        return "admin"

    @get("/helper", guards=[require_scopes("admin")])
    async def helper() -> str:
        return "helper"

    @get("/sync-helper", guards=[require_scopes("admin")], sync_to_thread=False)
    def sync_helper() -> str:
        return "helper"

    return wrap(Litestar([admin, helper, sync_helper]), auth)


def flask(auth: Authenticator) -> Any:
    from flask import Flask

    from jwt_middleware.integrations.flask import JWTFlask, require_scopes

    app = Flask(__name__)

    @app.get("/admin")
    def admin() -> str:
        return "admin"

    @app.get("/helper")
    @require_scopes("admin")
    def helper() -> str:
        return "helper"

    @app.get("/sync-helper")
    @require_scopes("admin")
    def sync_helper() -> str:
        return "helper"

    JWTFlask(app, auth)
    return app


FRAMEWORKS: dict[str, tuple[Callable[[Authenticator], Any], str]] = {
    "starlette": (starlette, "asgi"),
    "fastapi": (fastapi_wrapped, "asgi"),
    "fastapi-add_middleware": (fastapi_add_middleware, "asgi"),
    "litestar": (litestar, "asgi"),
    "flask": (flask, "wsgi"),
}
HOOKS = {"no hook": None, "sync hook": "sync", "async hook": "async"}


def get(app: Any, driver: str, path: str, headers: dict[str, str]) -> httpx.Response:
    if driver == "wsgi":
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="https://api.test") as client:
            return client.get(path, headers=headers)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://api.test") as c:
            return await c.get(path, headers=headers)

    return asyncio.run(go())


@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_the_helper_refuses_with_the_middleware_answer(framework: str, hook: str) -> None:
    clock = FakeClock(NOW)
    mode = HOOKS[hook]
    on_refusal = in_mode(mode, shaper) if mode else None  # type: ignore[arg-type]
    auth = Authenticator(config(clock, rules=ADMIN_RULE, on_refusal=on_refusal))
    build, driver = FRAMEWORKS[framework]
    app = build(auth)
    reader, admin = bearer(token(clock, scope="read")), bearer(token(clock, scope="admin"))
    by_middleware = get(app, driver, "/admin", reader)
    for path in ("/helper", "/sync-helper"):
        by_helper = get(app, driver, path, reader)
        assert by_helper.status_code == by_middleware.status_code == 403
        assert by_helper.headers.get_list("www-authenticate") == by_middleware.headers.get_list("www-authenticate")
        assert by_helper.content == by_middleware.content, (framework, path)
        assert by_helper.headers["content-type"] == by_middleware.headers["content-type"] == "application/json"
        assert by_helper.headers["cache-control"] == "no-store"
        assert get(app, driver, path, admin).status_code == 200
    if mode:
        assert by_middleware.json() == {"title": "refused", "status": 403, "code": "insufficient_scope",
                                        "seen_request": True}
    else:
        assert set(by_middleware.json()) == {"error", "error_description"}


@pytest.mark.parametrize("order", ["before", "after"])
def test_a_fastapi_handler_of_the_app_for_refused_wins(order: str) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse

    from jwt_middleware.integrations.fastapi import Refused

    clock = FakeClock(NOW)
    auth = Authenticator(config(clock, rules=ADMIN_RULE))
    api = fastapi_routes()

    async def mine(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refused)
        return JSONResponse({"mine": exc.refusal.reason}, status_code=exc.status_code, headers=exc.headers)

    if order == "before":
        api.add_exception_handler(Refused, mine)
    app = JWTMiddleware(api, auth)
    if order == "after":
        api.add_exception_handler(Refused, mine)
    response = get(app, "asgi", "/helper", bearer(token(clock, scope="read")))
    assert response.status_code == 403 and response.json() == {"mine": "insufficient_scope"}
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


def test_a_litestar_handler_of_the_app_for_refused_wins() -> None:
    from litestar import Litestar, Request, Response
    from litestar import get as route

    from jwt_middleware.integrations.litestar import require_scopes, wrap
    from jwt_middleware.integrations.starlette import Refused

    @route("/helper", guards=[require_scopes("admin")])
    async def helper() -> str:
        return "helper"

    def mine(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        return Response({"mine": True}, status_code=418)

    clock = FakeClock(NOW)
    app = wrap(Litestar([helper], exception_handlers={Refused: mine}), Authenticator(config(clock)))
    assert get(app, "asgi", "/helper", bearer(token(clock, scope="read"))).status_code == 418


def test_flask_routes_a_refusal_to_the_apps_handler_for_refused_and_keeps_our_challenge() -> None:
    from flask import Flask

    from jwt_middleware.integrations.flask import JWTFlask, Refused, require_scopes

    clock = FakeClock(NOW)
    by_code: list[int] = []

    def app_with(own_handler: bool) -> Flask:
        app = Flask(__name__)

        @app.get("/helper")
        @require_scopes("admin")
        def helper() -> str:
            return "helper"

        @app.errorhandler(403)
        def forbidden_page(error: Exception) -> tuple[str, int]:
            by_code.append(403)
            return "<h1>Forbidden</h1>", 403

        if own_handler:

            @app.errorhandler(Refused)
            def refused(error: Refused) -> tuple[dict[str, Any], int, dict[str, str]]:
                assert error.get_response().status_code == 403  # the middleware's answer, at hand
                return {"mine": error.refusal.reason}, error.code or 500, {
                    "WWW-Authenticate": "Basic", "Cache-Control": "max-age=60"}

        JWTFlask(app, Authenticator(config(clock)))
        return app

    reader = bearer(token(clock, scope="read"))
    plain = get(app_with(False), "wsgi", "/helper", reader)
    assert plain.headers["content-type"] == "application/json" and not by_code  # a code's handler never sees it
    routed = get(app_with(True), "wsgi", "/helper", reader)
    assert (routed.status_code, routed.json()) == (403, {"mine": "insufficient_scope"})
    assert routed.headers.get_list("www-authenticate") == plain.headers.get_list("www-authenticate")
    assert routed.headers["cache-control"] == "no-store"
