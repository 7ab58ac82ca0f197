"""Starlette behind JWTMiddleware. Run: ``uvicorn examples.starlette_app:app``"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jwt_middleware import JWTMiddleware
from jwt_middleware.integrations.starlette import requires

from ._shared import authenticator


async def home(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "anyone"})


async def me(request: Request) -> JSONResponse:
    return JSONResponse({"sub": request.user.identity, "scopes": sorted(request.auth.scopes)})


@requires("admin")  # Starlette's own check works unchanged on the middleware's scope["auth"]
async def admin(request: Request) -> JSONResponse:
    return JSONResponse({"admin": request.user.identity})


app = JWTMiddleware(Starlette(routes=[Route("/", home), Route("/me", me), Route("/admin", admin)]), authenticator())
