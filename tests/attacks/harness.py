"""The real stack under attack: JWTMiddleware around a Starlette app, driven by httpx.ASGITransport.

The app counts its calls, so every test can prove a refusal never reached it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jwt_middleware import Authenticator, JWTMiddleware

from . import corpus
from .corpus import make_authenticator, make_config

__all__ = ["Harness", "HeaderValue", "Reply", "make_authenticator", "make_config", "params"]

HeaderValue = str | bytes


def params(cases: Sequence[corpus.Case]) -> list[Any]:
    """pytest parameters named after each attack."""
    return [pytest.param(case, id=case.id) for case in cases]


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Harness:
    authenticator: Authenticator
    calls: int = 0
    seen: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        async def endpoint(request: Request) -> JSONResponse:
            self.calls += 1
            identity = request.scope.get("jwt_middleware.identity")
            self.seen.append(identity)
            return JSONResponse({"sub": getattr(identity, "subject", None)})

        app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])
        self.app = JWTMiddleware(app, self.authenticator)

    # --- sending ------------------------------------------------------------------------------
    def request(
        self, headers: Sequence[tuple[str, HeaderValue]] = (), *, path: str = "/resource", query: str = ""
    ) -> Reply:
        """One GET with exactly these headers (raw bytes go through untouched)."""
        url = path + (f"?{query}" if query else "")
        raw = [
            (name.encode(), value if isinstance(value, bytes) else value.encode()) for name, value in headers
        ]

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.get(url, headers=raw)

        response = asyncio.run(go())
        return Reply(response.status_code, list(response.headers.multi_items()), response.content)

    def bearer(self, token: HeaderValue, **kwargs: Any) -> Reply:
        value: HeaderValue = b"Bearer " + token if isinstance(token, bytes) else "Bearer " + token
        return self.request([("authorization", value)], **kwargs)

    def cookie(self, token: str) -> Reply:
        return self.request([("cookie", f"{corpus.COOKIE}={token}")])

    # --- asserting ----------------------------------------------------------------------------
    def assert_accepted(self, reply: Reply) -> None:
        assert reply.status == 200, (reply.status, reply.headers, reply.text)
        assert self.calls == 1

    def assert_refused(self, reply: Reply, status: int = 401, error: str | None = "invalid_token") -> None:
        """The refusal RFC 6750 §3.1 prescribes, and the protected app never ran."""
        assert self.calls == 0, "the protected app was called"
        assert reply.status == status, (reply.status, reply.text)
        challenges = reply.header_values("www-authenticate")
        assert challenges, "a refusal must carry WWW-Authenticate"
        bearer = [c for c in challenges if c.startswith("Bearer ")]
        assert bearer, challenges
        if error is None:
            assert all("error=" not in c for c in bearer), bearer
        else:
            assert any(f'error="{error}"' in c for c in bearer), bearer
            assert reply.body == b"" or f'"error":"{error}"' in reply.text, reply.text
        assert "no-store" in ",".join(reply.header_values("cache-control"))

    def assert_case(self, case: corpus.Case, reply: Reply) -> None:
        self.assert_refused(reply, case.status, case.error)
