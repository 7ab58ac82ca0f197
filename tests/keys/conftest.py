"""Fixtures for the key tests: a second real issuer, and one decision call for both drivers."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterator

import pytest
import trustme

from jwt_middleware import Authenticator, Identity, RequestView

from ..support.jwks_server import JWKSServer

Decide = Callable[[Authenticator, RequestView], Awaitable[Identity | None]]


@pytest.fixture
def other_jwks_server(ca: trustme.CA) -> Iterator[JWKSServer]:
    """A second, independent HTTPS issuer on 127.0.0.1 (another port, so another issuer URL)."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
    server = JWKSServer(server_tls).start()
    yield server
    server.stop()


@pytest.fixture(params=["async", "sync"])
def decide(request: pytest.FixtureRequest) -> Decide:
    """``Authenticator.aauthenticate``, or the sync ``authenticate`` run in a worker thread."""
    if request.param == "async":
        return lambda auth, view: auth.aauthenticate(view)

    async def sync(auth: Authenticator, view: RequestView) -> Identity | None:
        return await asyncio.to_thread(auth.authenticate, view)

    return sync
