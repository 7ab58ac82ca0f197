"""WSGIJWTMiddleware: the same decisions as ASGI, driven synchronously and thread-safely."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from joserfc.jwk import Key

from jwt_middleware import (
    Authenticator,
    Config,
    Issuer,
    JWKSUrl,
    JWTMiddleware,
    KeyPolicy,
    Refusal,
    RequestView,
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


def test_environ_becomes_the_app_path_below_script_name_and_lower_case_headers() -> None:
    view = request_from_environ({
        "REQUEST_METHOD": "post", "SCRIPT_NAME": "/api", "PATH_INFO": "/caf\xc3\xa9", "QUERY_STRING": "a=1",
        "HTTP_AUTHORIZATION": "Bearer x", "CONTENT_TYPE": "application/json", "wsgi.url_scheme": "https",
        "REMOTE_ADDR": "10.0.0.1", "SERVER_NAME": "api.test", "SERVER_PORT": "443",
    })
    assert (view.method, view.path, view.scheme, view.query_string) == ("POST", "/café", "https", b"a=1")
    assert (view.root_path, view.full_path) == ("/api", "/api/café")
    assert (b"authorization", b"Bearer x") in view.headers
    assert all(name != b"content-type" for name, _ in view.headers)  # only headers the core reads
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


# --- The same refusals through Flask and bare WSGI as through ASGI ---------------------------------


def flask_with(auth: Authenticator) -> tuple[Any, list[Any]]:
    from flask import Flask

    from jwt_middleware.integrations.flask import JWTFlask, current_identity

    app = Flask(__name__)
    seen: list[Any] = []

    @app.get("/me")
    @app.get("/admin")
    @app.get("/open")
    def me() -> dict[str, Any]:
        caller = current_identity()
        seen.append(caller)
        return {"sub": caller.subject if caller else None}

    JWTFlask(app, auth)
    return app, seen


def asgi_app(calls: list[Any]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope.get(IDENTITY_KEY))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def answers(es256_key: Key, clock: FakeClock) -> list[tuple[str, str, list[tuple[str, str]], int]]:
    good = mint(es256_key, issuer=ISSUER, now=clock.now)
    other = mint(es256_key, issuer=ISSUER, now=clock.now)
    return [
        ("valid", "/me", [("authorization", f"Bearer {good}")], 200),
        ("missing", "/me", [], 401),
        ("expired", "/me", [("authorization", f"Bearer {mint(es256_key, issuer=ISSUER, now=clock.now - 7200)}")], 401),
        ("forged", "/me", [("authorization", f"Bearer {mint(make_key('ES256', kid='es-1'), issuer=ISSUER, now=clock.now)}")], 401),
        ("two-authorization-headers", "/me", [("authorization", f"Bearer {good}"), ("authorization", f"Bearer {other}")], 400),
        ("malformed", "/me", [("authorization", "Bearer a b")], 400),
        ("insufficient-scope", "/admin", [("authorization", f"Bearer {good}")], 403),
        ("optional-anonymous", "/open", [], 200),
    ]


def test_flask_bare_wsgi_and_asgi_answer_every_case_identically(es256_key: Key, clock: FakeClock) -> None:
    import asyncio

    auth = auth_for(es256_key, clock)
    flask, flask_calls = flask_with(auth)
    bare = App()
    asgi_calls: list[Any] = []
    asgi = JWTMiddleware(asgi_app(asgi_calls), auth)

    def shape(response: httpx.Response) -> tuple[int, list[str], str | None, bytes]:
        body = response.content if response.status_code != 200 else b""
        return response.status_code, response.headers.get_list("www-authenticate"), \
            response.headers.get("cache-control"), body

    async def via_asgi(path: str, headers: list[tuple[str, str]]) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="https://api.test") as c:
            return await c.get(path, headers=headers)

    refused = 0
    for name, path, headers, status in answers(es256_key, clock):
        # A WSGI server joins a repeated header into one environ value (PEP 3333, RFC 9110 §5.3).
        joined = [("authorization", ", ".join(v for k, v in headers if k == "authorization"))] if len(headers) > 1 else headers
        reference = shape(asyncio.run(via_asgi(path, headers)))
        for app in (flask, WSGIJWTMiddleware(bare, auth)):
            with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="https://api.test") as client:
                seen = shape(client.get(path, headers=joined))
            assert seen == reference, name
        assert reference[0] == status, name
        refused += status != 200
    allowed = len(answers(es256_key, clock)) - refused
    # The apps were called on the allowed requests only, each with the identity (None: anonymous).
    assert len(flask_calls) == len(bare.calls) == len(asgi_calls) == allowed
    assert [c.subject if c else None for c in flask_calls] == ["user-1", None]
    assert [c.subject if c else None for c in bare.calls] == ["user-1", None]


def test_flask_view_is_never_called_on_refusal(es256_key: Key, clock: FakeClock) -> None:
    flask, seen = flask_with(auth_for(es256_key, clock))
    with httpx.Client(transport=httpx.WSGITransport(app=flask), base_url="https://api.test") as client:
        for header in ({}, {"authorization": "Bearer a.b.c"}, {"authorization": "Bearer x, Bearer y"}):
            assert client.get("/me", headers=header).status_code in (400, 401)
        assert client.get("/admin", headers={"authorization": f"Bearer {mint(es256_key, issuer=ISSUER, now=clock.now)}"}).status_code == 403
    assert seen == []


def test_flask_require_scopes_answers_like_the_middleware(es256_key: Key, clock: FakeClock) -> None:
    """The decorator's refusal on an optional route uses the installed Authenticator's realm."""
    from flask import Flask

    from jwt_middleware.integrations.flask import JWTFlask, require_scopes

    auth = Authenticator(Config(
        issuers=[Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(es256_key)))],
        audience="api", realm="shop", rules=(Rule("/open", access="optional"),), clock=clock,
    ))
    app = Flask(__name__)

    @app.get("/open")
    @require_scopes("admin")
    def view() -> str:
        return "never"

    JWTFlask(app, auth)
    good = mint(es256_key, issuer=ISSUER, now=clock.now)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="https://api.test") as client:
        anonymous = client.get("/open")
        scoped = client.get("/open", headers={"authorization": f"Bearer {good}"})
        wrapped_refusal = client.get("/me")
    assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, 'Bearer realm="shop"')
    assert anonymous.content == wrapped_refusal.content and anonymous.headers["cache-control"] == "no-store"
    assert scoped.status_code == 403
    assert scoped.headers["www-authenticate"].startswith('Bearer realm="shop", error="insufficient_scope"')
    assert 'scope="admin"' in scoped.headers["www-authenticate"]


def test_joined_authorization_headers_get_the_same_description_as_two_asgi_headers(
    es256_key: Key, clock: FakeClock
) -> None:
    auth = auth_for(es256_key, clock)
    token = mint(es256_key, issuer=ISSUER, now=clock.now)
    request = RequestView("GET", "/me", [(b"authorization", f"Bearer {token}".encode())] * 2)
    joined = request_from_environ({"REQUEST_METHOD": "GET", "PATH_INFO": "/me",
                                   "HTTP_AUTHORIZATION": f"Bearer {token}, Bearer {token}"})
    outcomes = []
    for view in (request, joined):
        with pytest.raises(Refusal) as refused:
            auth.authenticate(view)
        outcomes.append(auth.render(refused.value)[1])
    assert outcomes[0] == outcomes[1]


def test_decision_headers_list_every_header_the_core_reads() -> None:
    """The WSGI view converts only DECISION_HEADERS; a header the core reads but the list misses
    would silently never be seen under WSGI."""
    import re
    from pathlib import Path

    from jwt_middleware.request import DECISION_HEADERS

    core = Path(__file__).resolve().parents[2] / "jwt_middleware" / "core"
    read: set[bytes] = set()
    for source in core.glob("*.py"):
        text = source.read_text()
        read.update(m.encode() for m in re.findall(r'header(?:_values)?\(b"([a-z-]+)"\)', text))
        read.update(m.encode() for m in re.findall(r'\(b"(x-forwarded-[a-z]+)"', text))
    assert read and read <= set(DECISION_HEADERS), read - set(DECISION_HEADERS)
    assert b"authorization" in read or b"authorization" in DECISION_HEADERS


# --- Status lines, the mount point, hostile environ values ------------------------------------------


@pytest.mark.parametrize(
    ("refusal", "line"),
    [
        ("MissingToken", "401 Unauthorized"),
        ("InvalidRequest", "400 Bad Request"),
        ("InsufficientScope", "403 Forbidden"),
        ("RateLimited", "429 Too Many Requests"),
        ("Unavailable", "503 Service Unavailable"),
    ],
)
def test_status_line_carries_the_standard_reason_phrase(es256_key: Key, clock: FakeClock, refusal: str,
                                                        line: str) -> None:
    import jwt_middleware

    error = getattr(jwt_middleware, refusal)("test", retry_after=1)

    class Refusing(Authenticator):
        def authenticate(self, request: RequestView) -> Any:
            raise error

    auth = auth_for(es256_key, clock)
    refusing = Refusing(auth.config)
    app = App()
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    body = WSGIJWTMiddleware(app, refusing)({"REQUEST_METHOD": "GET", "PATH_INFO": "/me"},
                                            lambda status, headers, exc_info=None: seen.append((status, headers)))
    assert seen[0][0] == line and app.calls == []
    assert (int(seen[0][0][:3]), seen[0][1], b"".join(body)) == refusing.render(error)


def test_rules_match_the_path_below_the_script_name(es256_key: Key, clock: FakeClock) -> None:
    """Mounted at /api (SCRIPT_NAME), a Rule names the app's own route, as under ASGI with a
    root_path; Config(match_full_path=True) matches SCRIPT_NAME + PATH_INFO instead."""
    token = mint(es256_key, issuer=ISSUER, now=clock.now)
    for full, rules in ((False, (Rule("/admin", scopes=("admin",)), Rule("/health", access="public"))),
                        (True, (Rule("/api/admin", scopes=("admin",)), Rule("/api/health", access="public")))):
        auth = Authenticator(Config(
            issuers=[Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(es256_key)))],
            audience="api", rules=rules, match_full_path=full, clock=clock,
        ))
        app = App()
        middleware = WSGIJWTMiddleware(app, auth)
        statuses: list[str] = []

        def call(path: str, **extra: str) -> None:
            environ = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "/api", "PATH_INFO": path, **extra}
            middleware(environ, lambda status, headers, exc_info=None: statuses.append(status))  # noqa: B023

        call("/admin", HTTP_AUTHORIZATION=f"Bearer {token}")
        call("/health")
        assert statuses == ["403 Forbidden", "200 OK"] and app.calls == [None]


def test_hostile_environ_text_is_refused_or_passed_never_a_crash(es256_key: Key, clock: FakeClock) -> None:
    """Values outside latin-1 (a server against PEP 3333) become replacement bytes, not a 500."""
    app = App()
    middleware = WSGIJWTMiddleware(app, auth_for(es256_key, clock))
    token = mint(es256_key, issuer=ISSUER, now=clock.now)
    statuses: list[str] = []
    for extra in ({"HTTP_AUTHORIZATION": "Bearer \u65e5\u672c"}, {"QUERY_STRING": "q=\u65e5"},
                  {"PATH_INFO": "/\u65e5\u672c"}, {"HTTP_AUTHORIZATION": f"Bearer {token}", "QUERY_STRING": "q=\u65e5"}):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/me", **extra}
        middleware(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert statuses == ["400 Bad Request", "401 Unauthorized", "401 Unauthorized", "200 OK"]


def test_identity_of_reads_the_namespaced_key(es256_key: Key, clock: FakeClock) -> None:
    from jwt_middleware.wsgi import identity_of

    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(identity_of(environ))
        start_response("200 OK", [])
        return []

    middleware = WSGIJWTMiddleware(app, auth_for(es256_key, clock))
    token = mint(es256_key, {"sub": "w"}, issuer=ISSUER, now=clock.now)
    for headers in ({"HTTP_AUTHORIZATION": f"Bearer {token}"}, {}):
        middleware({"REQUEST_METHOD": "GET", "PATH_INFO": "/open", **headers}, lambda *a: None)
    assert seen[0].subject == "w" and seen[1] is None and identity_of({}) is None
