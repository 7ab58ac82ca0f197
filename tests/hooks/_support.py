"""What the hook tests share: one issuer and key, hooks in a sync and an async form, and the same
small API served as ASGI (Starlette, through its TestClient) and as WSGI (Flask, through httpx's
WSGITransport), so every test runs one table of requests through both drivers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from jwt_middleware import Authenticator, Config, Issuer, JWTMiddleware, Rule, StaticKeys
from jwt_middleware.errors import ClaimsRejected, InsufficientScope
from jwt_middleware.identity import Identity
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks

ISSUER = "https://issuer.test"
KEY = make_key("ES256", kid="hooks-1")
NOW = 1_800_000_000.0
RULES = (Rule("/open", access="optional"), Rule("/admin", scopes=("admin",)))
#: a value that must never reach a log line, a header or a body
MARKER = "Z9MARKERZ9"

Mode = Literal["sync", "async"]
Driver = Literal["asgi", "wsgi"]
MODES: tuple[Mode, ...] = ("sync", "async")
DRIVERS: tuple[Driver, ...] = ("asgi", "wsgi")


def token(clock: FakeClock, **claims: Any) -> str:
    claims.setdefault("tenant", "acme")
    return mint(KEY, claims, issuer=ISSUER, now=clock.now)


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


def config(clock: FakeClock, **options: Any) -> Config:
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(KEY)))
    options.setdefault("rules", RULES)
    return Config(issuers=[issuer], audience="api", clock=clock, **options)


def in_mode(mode: Mode, body: Callable[..., Any]) -> Callable[..., Any]:
    """``body`` as a plain function, or as a coroutine function doing the same."""
    if mode == "sync":
        return body

    async def hook(*args: Any) -> Any:
        return body(*args)

    return hook


@dataclass
class Calls:
    """What a hook was called with, in order."""

    seen: list[Any] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seen)


def tenant_validator(mode: Mode, calls: Calls) -> Callable[..., Any]:
    """Accepts tenant ``acme``; ``other`` is a 401, ``readonly`` a 403 for the scope ``write``."""

    def validate(claims: Any) -> None:
        calls.seen.append(claims)
        tenant = claims.get("tenant")
        if tenant == "readonly":
            raise InsufficientScope("tenant_read_only", params={"scope": "write"})
        if tenant != "acme":
            raise ClaimsRejected("tenant_not_allowed")

    return in_mode(mode, validate)


@dataclass(frozen=True)
class User:
    """The app's own user, as a database row would give it."""

    name: str
    tenant: str


def user_loader(mode: Mode, calls: Calls, users: dict[str, User] | None = None) -> Callable[..., Any]:
    """Loads the user named by ``sub`` from ``users`` (default: user-1 of acme); None when unknown."""
    known = users if users is not None else {"user-1": User("user-1", "acme")}

    def load(identity: Identity) -> User | None:
        calls.seen.append(identity)
        return known.get(identity.subject or "")

    return in_mode(mode, load)


def problem_shaper(mode: Mode, calls: Calls) -> Callable[..., Any]:
    """An RFC 9457-style body naming the refusal's status and code (never a claim value)."""

    def shape(refusal: Any, request: Any) -> dict[str, Any]:
        calls.seen.append((refusal, request))
        return {"type": "about:blank", "status": refusal.status, "code": refusal.error or "unauthorized",
                "path": request.path if request is not None else None}

    return in_mode(mode, shape)


def describe(user: object) -> Any:
    if isinstance(user, User):
        return {"name": user.name, "tenant": user.tenant}
    return None if user is None else type(user).__name__


def starlette_app(auth: Authenticator) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from jwt_middleware.asgi import IDENTITY_KEY, USER_KEY
    from jwt_middleware.integrations.starlette import requires

    async def me(request: Request) -> JSONResponse:
        identity = request.scope.get(IDENTITY_KEY)
        return JSONResponse({
            "sub": identity.subject if identity else None,
            "user": describe(request.scope["user"]),
            "loaded": describe(request.scope.get(USER_KEY)),
            "auth": type(request.scope["auth"]).__name__,
            "scopes": sorted(request.auth.scopes),
        })

    @requires("admin")
    async def helper(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [Route(path, me) for path in ("/me", "/open", "/admin")]
    return JWTMiddleware(Starlette(routes=[*routes, Route("/helper", helper)]), auth)


def flask_app(auth: Authenticator) -> Any:
    from flask import Flask, request

    from jwt_middleware.integrations.flask import JWTFlask, current_identity, current_user, require_scopes
    from jwt_middleware.wsgi import USER_KEY

    app = Flask(__name__)

    @app.get("/me")
    @app.get("/open")
    @app.get("/admin")
    def me() -> dict[str, Any]:
        identity = current_identity()
        loads = auth.loads_users
        return {
            "sub": identity.subject if identity else None,
            "user": describe(current_user()) if loads else describe(None),
            "loaded": describe(request.environ.get(USER_KEY)),
            "auth": None,
            "scopes": sorted(identity.scopes) if identity else [],
        }

    @app.get("/helper")
    @require_scopes("admin")
    def helper() -> dict[str, Any]:
        return {"ok": True}

    JWTFlask(app, auth)
    return app


@contextmanager
def client(driver: Driver, auth: Authenticator) -> Iterator[httpx.Client]:
    """A sync client of the API under ``driver``, on https://api.test."""
    if driver == "asgi":
        from starlette.testclient import TestClient

        with TestClient(starlette_app(auth), base_url="https://api.test") as test_client:
            yield test_client
        return
    with httpx.Client(transport=httpx.WSGITransport(app=flask_app(auth)), base_url="https://api.test") as http:
        yield http


def body(response: httpx.Response) -> Any:
    return json.loads(response.content) if response.content else None


def challenges(response: httpx.Response) -> Sequence[str]:
    return response.headers.get_list("www-authenticate")
