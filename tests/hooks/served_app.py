"""The hook API as a real server runs it: ``gunicorn 'tests.hooks.served_app:flask_app()'`` (WSGI)
or ``starlette_app()`` under uvicorn (ASGI). ``HOOKS_JWKS`` is the issuer's public key set and
``HOOKS_MODE`` ("sync" or "async") the kind of every hook; the clock is the real one."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from jwt_middleware import Authenticator, Config, Issuer, Rule, StaticKeys

from . import _support
from ._support import Calls, problem_shaper, tenant_validator, user_loader


def authenticator(jwks: dict[str, Any] | None = None, mode: str | None = None) -> Authenticator:
    keys = jwks if jwks is not None else json.loads(os.environ["HOOKS_JWKS"])
    kind: Any = mode or os.environ.get("HOOKS_MODE", "sync")
    issuer = Issuer(_support.ISSUER, algorithms=("ES256",), keys=StaticKeys(keys))
    return Authenticator(Config(
        issuers=[issuer], audience="api", clock=time.time, rules=(Rule("/admin", scopes=("admin",)),),
        claims_validator=tenant_validator(kind, Calls()),
        identity_loader=user_loader(kind, Calls()),
        identity_loader_ttl=30,
        on_refusal=problem_shaper(kind, Calls()),
    ))


def flask_app() -> Any:
    return _support.flask_app(authenticator())


def starlette_app(jwks: dict[str, Any], mode: str) -> Any:
    return _support.starlette_app(authenticator(jwks, mode))
