"""The cookie source in a real browser: an HttpOnly ``__Host-`` cookie is sent by Chromium,
accepted by the middleware, and unreadable from JavaScript (headless Debian Chromium)."""

from __future__ import annotations

import shutil
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from joserfc.jwk import Key
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from jwt_middleware import (
    Authenticator,
    Config,
    CookieSource,
    HeaderSource,
    Issuer,
    JWTMiddleware,
    Rule,
    StaticKeys,
)
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks

from ..support.uvicorn_server import serve

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright (pip) drives Debian's chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (scripts/test.sh installs it)"
)
COOKIE = "__Host-access_token"
ISSUER = "https://issuer.test"


def build_app(key: Key, clock: FakeClock) -> JWTMiddleware:
    async def login(request: Request) -> Response:
        token = mint(key, {"sub": "browser-user", "scope": "read"}, issuer=ISSUER, now=clock.now)
        response = HTMLResponse("<html><body>signed in</body></html>")
        response.set_cookie(COOKIE, token, path="/", secure=True, httponly=True, samesite="strict")
        return response

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.user.display_name})

    async def logout(request: Request) -> Response:
        response = HTMLResponse("bye")
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    app = Starlette(routes=[Route("/login", login), Route("/me", me), Route("/logout", logout)])
    auth = Authenticator(
        Config(
            issuers=[Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))],
            audience="api",
            sources=(CookieSource(COOKIE), HeaderSource()),
            rules=(Rule("/login", access="public"), Rule("/logout", access="public")),
            clock=clock,
        )
    )
    return JWTMiddleware(app, auth)


@pytest.fixture(scope="module")
def https_port() -> Iterator[int]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    with tempfile.TemporaryDirectory() as tmp:
        certfile, keyfile = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.cert_chain_pems[0].write_to_path(str(certfile))
        cert.private_key_pem.write_to_path(str(keyfile))
        key = make_key("ES256")
        app = build_app(key, FakeClock())
        with serve(
            app, ssl_certfile=str(certfile), ssl_keyfile=str(keyfile), ssl_cert_reqs=ssl.CERT_NONE
        ) as port:
            yield port


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        yield instance
        instance.close()


def test_httponly_host_cookie_authenticates_and_is_invisible_to_javascript(
    https_port: int, browser: object
) -> None:
    base = f"https://localhost:{https_port}"
    context = browser.new_context(ignore_https_errors=True)  # type: ignore[attr-defined]
    page = context.new_page()
    assert page.goto(f"{base}/me").status == 401  # no cookie yet
    assert page.goto(f"{base}/login").status == 200
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies[COOKIE]["httpOnly"] and cookies[COOKIE]["secure"]
    assert COOKIE not in page.evaluate("document.cookie")  # JavaScript cannot read the token
    response = page.goto(f"{base}/me")
    assert response.status == 200 and response.json() == {"sub": "browser-user"}
    # fetch() from the page sends the cookie too (same origin)
    assert page.evaluate("fetch('/me').then(r => r.status)") == 200
    page.goto(f"{base}/logout")
    assert page.goto(f"{base}/me").status == 401
    context.close()


def test_cookie_token_conflicting_with_header_token_is_refused(https_port: int, browser: object) -> None:
    base = f"https://localhost:{https_port}"
    context = browser.new_context(ignore_https_errors=True)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{base}/login")
    status = page.evaluate("fetch('/me', {headers: {Authorization: 'Bearer a.b.c'}}).then(r => r.status)")
    assert status == 400  # two different tokens in one request (RFC 6750 §3.1 invalid_request)
    context.close()
