"""Small builders shared by the key tests: issuers, authenticators, requests, fetch counting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from joserfc.jwk import Key

from jwt_middleware import Authenticator, Config, Issuer, JWKSUrl, JWTMiddleware, KeyPolicy, RequestView
from jwt_middleware.keys.sources import KeySource
from jwt_middleware.testing import FakeClock, mint

from ..support.jwks_server import JWKSServer


def bearer(token: str, path: str = "/") -> RequestView:
    """A GET carrying ``Authorization: Bearer <token>``."""
    return RequestView("GET", path, [(b"authorization", f"Bearer {token}".encode())])


def remote_auth(
    server: JWKSServer,
    policy: KeyPolicy,
    clock: FakeClock,
    *,
    keys: KeySource | None = None,
    algorithms: tuple[str, ...] = ("ES256",),
    **issuer_options: Any,
) -> Authenticator:
    """An Authenticator trusting one issuer, ``server.url``, whose keys come from its /jwks."""
    source = keys if keys is not None else JWKSUrl(server.jwks_url)
    issuer = Issuer(server.url, algorithms=algorithms, keys=source, **issuer_options)
    return Authenticator(Config(issuers=(issuer,), audience="api", clock=clock, keys=policy))


def token_for(server: JWKSServer, key: Key, clock: FakeClock, **options: Any) -> str:
    """A fresh token (new jti, so never a verified-cache hit) from ``server``'s issuer, minted now."""
    options.setdefault("lifetime", 3600)
    return mint(key, issuer=server.url, now=clock.now, **options)


def asgi_app(auth: Authenticator) -> JWTMiddleware:
    """A tiny Starlette app behind the middleware; ``/`` answers the subject."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.scope["jwt_middleware.identity"].subject)

    return JWTMiddleware(Starlette(routes=[Route("/", home)]), auth)


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll (briefly) for a background refresh thread to finish; never used to expire anything."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


async def await_until(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """The async twin of :func:`wait_until`: lets a background refresh task run on this loop."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()
