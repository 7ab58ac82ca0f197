"""WSGIJWTMiddleware: the same decisions as ASGI, driven synchronously and thread-safely."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from joserfc.jwk import Key

from jwt_middleware import (
    Authenticator,
    Config,
    Issuer,
    JWKSUrl,
    KeyPolicy,
    Rule,
    StaticKeys,
    WSGIJWTMiddleware,
)
from jwt_middleware.testing import FakeClock, make_key, mint, public_jwks
from jwt_middleware.wsgi import IDENTITY_KEY, request_from_environ

from ..support.jwks_server import JWKSServer

ISSUER = "https://issuer.test"


class App:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls.append(environ.get(IDENTITY_KEY))
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]


def auth_for(key: Key, clock: FakeClock) -> Authenticator:
    return Authenticator(Config(
        issuers=[Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))],
        audience="api", rules=(Rule("/admin", scopes=("admin",)), Rule("/open", access="optional")), clock=clock,
    ))


def wrapped(key: Key, clock: FakeClock) -> tuple[httpx.Client, App]:
    auth = auth_for(key, clock)
    app = App()
    client = httpx.Client(transport=httpx.WSGITransport(app=WSGIJWTMiddleware(app, auth)), base_url="https://api.test")
    return client, app


def test_valid_token_reaches_the_app_with_its_identity(es256_key: Key, clock: FakeClock) -> None:
    client, app = wrapped(es256_key, clock)
    response = client.get("/me", headers={"authorization": f"Bearer {mint(es256_key, issuer=ISSUER, now=clock.now)}"})
    assert response.status_code == 200 and app.calls[0].subject == "user-1"


def test_refusals_never_call_the_app(es256_key: Key, clock: FakeClock) -> None:
    client, app = wrapped(es256_key, clock)
    good = mint(es256_key, issuer=ISSUER, now=clock.now)
    cases = [
        ({}, 401, 'Bearer realm="api"'),
        ({"authorization": f"Bearer {mint(es256_key, issuer=ISSUER, now=clock.now - 7200)}"}, 401, "invalid_token"),
        ({"authorization": f"Bearer {mint(make_key('ES256', kid='es-1'), issuer=ISSUER, now=clock.now)}"}, 401,
         "invalid_token"),
        ({"authorization": f"Bearer {good} junk"}, 400, "invalid_request"),
    ]
    for headers, status, challenge in cases:
        response = client.get("/me", headers=headers)
        assert response.status_code == status and challenge in response.headers["www-authenticate"]
        assert response.headers["cache-control"] == "no-store"
    scoped = client.get("/admin", headers={"authorization": f"Bearer {good}"})
    assert scoped.status_code == 403 and 'scope="admin"' in scoped.headers["www-authenticate"]
    assert app.calls == []


def test_two_authorization_headers_joined_by_the_server_are_refused(es256_key: Key, clock: FakeClock) -> None:
    """WSGI servers join a repeated header with ', ' (RFC 9110 §5.3): still two credentials."""
    auth = auth_for(es256_key, clock)
    app = App()
    token = mint(es256_key, issuer=ISSUER, now=clock.now)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/me", "HTTP_AUTHORIZATION": f"Bearer {token}, Bearer {token}"}
    statuses: list[str] = []
    WSGIJWTMiddleware(app, auth)(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert statuses == ["400 Bad Request"] and app.calls == []


def test_optional_route_attaches_none_for_anonymous(es256_key: Key, clock: FakeClock) -> None:
    client, app = wrapped(es256_key, clock)
    assert client.get("/open").status_code == 200 and app.calls == [None]


def test_environ_becomes_the_full_path_and_lower_case_headers() -> None:
    view = request_from_environ({
        "REQUEST_METHOD": "post", "SCRIPT_NAME": "/api", "PATH_INFO": "/caf\xc3\xa9", "QUERY_STRING": "a=1",
        "HTTP_AUTHORIZATION": "Bearer x", "CONTENT_TYPE": "application/json", "wsgi.url_scheme": "https",
        "REMOTE_ADDR": "10.0.0.1", "SERVER_NAME": "api.test", "SERVER_PORT": "443",
    })
    assert (view.method, view.path, view.scheme, view.query_string) == ("POST", "/api/café", "https", b"a=1")
    assert (b"authorization", b"Bearer x") in view.headers and (b"content-type", b"application/json") in view.headers
    assert view.client_ip == "10.0.0.1" and view.server == "api.test:443"


def test_twenty_threads_on_a_cold_cache_cause_one_fetch(jwks_server: JWKSServer, key_policy: KeyPolicy) -> None:
    key = make_key("ES256", kid="cold")
    jwks_server.behaviour.jwks = public_jwks(key)
    jwks_server.behaviour.delay = 0.2
    auth = Authenticator(Config(
        issuers=[Issuer(jwks_server.url, algorithms=("ES256",), keys=JWKSUrl(jwks_server.jwks_url))],
        audience="api", keys=key_policy,
    ))
    app = App()
    middleware = WSGIJWTMiddleware(app, auth)
    token = mint(key, issuer=jwks_server.url)
    statuses: list[str] = []
    barrier = threading.Barrier(20)

    def call() -> None:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/me", "HTTP_AUTHORIZATION": f"Bearer {token}",
                   "wsgi.url_scheme": "https", "SERVER_NAME": "api.test", "SERVER_PORT": "443"}
        barrier.wait()
        middleware(environ, lambda status, headers, exc_info=None: statuses.append(status))

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=15)
    assert statuses == ["200 OK"] * 20 and len(app.calls) == 20
    assert jwks_server.behaviour.hits() == 1


def test_async_store_is_refused_under_wsgi(es256_key: Key) -> None:
    import pytest
    import redis.asyncio as aioredis

    from jwt_middleware import ConfigError
    from jwt_middleware.stores import AsyncRedisNonceStore

    auth = Authenticator(
        Config(issuers=[Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(es256_key)))],
               audience="api", rules=(Rule("/pay", one_time=True),)),
        nonce_store=AsyncRedisNonceStore(aioredis.Redis(port=1)),
    )
    with pytest.raises(ConfigError, match="RedisNonceStore"):
        WSGIJWTMiddleware(App(), auth)
