"""Under WSGI, rules decide on the request the app will route: canonical PATH_INFO below SCRIPT_NAME,
method case, HEAD, preflight; Flask and Django as the apps, environs as gunicorn builds them, and
Werkzeug's own server reading the request line byte for byte.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from joserfc.jwk import Key

from jwt_middleware import Authenticator, Config, Issuer, Rule, StaticKeys, WSGIJWTMiddleware
from jwt_middleware.testing import FakeClock, mint, public_jwks
from jwt_middleware.wsgi import IDENTITY_KEY, ORIGINAL_PATH_KEY
from tests.support.raw_http import raw_request

ISSUER = "https://issuer.test"
RULES = (
    Rule("/public", access="public"),
    Rule("/admin/*", scopes=("admin",)),
    Rule("/items/{id:int}", methods=("DELETE",), scopes=("delete",)),
    Rule("/items/{id:int}", access="public"),
    Rule("/reports", methods=("GET",), scopes=("reports",)),
)


def make_auth(key: Key, clock: FakeClock, **config: Any) -> Authenticator:
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))
    config.setdefault("rules", RULES)
    return Authenticator(Config(issuers=[issuer], audience="api", clock=clock, **config))


def environ(target: str, *, script: str = "", method: str = "GET", raw_key: str | None = "RAW_URI",
            **headers: str) -> dict[str, Any]:
    """An environ as gunicorn builds it: ``RAW_URI`` as sent, ``SCRIPT_NAME`` stripped from the
    decoded path, ``PATH_INFO`` in PEP 3333's latin-1 transport form."""
    path, _, query = target.partition("?")
    decoded = unquote_to_bytes(path).decode("latin-1")
    if script:
        assert decoded.startswith(script)
        decoded = decoded[len(script):]
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": script, "PATH_INFO": decoded, "QUERY_STRING": query,
        "SERVER_NAME": "api.test", "SERVER_PORT": "443", "wsgi.url_scheme": "https", "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": __import__("io").BytesIO(b""), "wsgi.errors": __import__("sys").stderr,
        "wsgi.version": (1, 0), "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "HTTP_HOST": "api.test",
    }
    if raw_key:
        env[raw_key] = target
    env.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    return env


class Result:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = int(status[:3])
        self.headers = dict(headers)
        self.body = body

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def call(app: Any, env: dict[str, Any]) -> Result:
    seen: list[Any] = []
    body = b"".join(app(env, lambda status, headers, exc_info=None: seen.append((status, headers))))
    return Result(seen[0][0], seen[0][1], body)


class Recording:
    """A bare WSGI app that records the environ it was called with."""

    def __init__(self) -> None:
        self.environs: list[dict[str, Any]] = []

    def __call__(self, env: dict[str, Any], start_response: Any) -> list[bytes]:
        self.environs.append(dict(env))
        start_response("200 OK", [("content-type", "application/json")])
        return [json.dumps({"path_info": env["PATH_INFO"]}).encode()]


@pytest.fixture
def tokens(es256_key: Key, clock: FakeClock) -> dict[str, str]:
    return {name: f"Bearer {mint(es256_key, {'sub': name, 'scope': scope}, now=clock.now)}"
            for name, scope in (("weak", "read"), ("admin", "admin"))}


NON_CANONICAL = ["//admin/panel", "///admin/users/7", "/admin//panel", "/admin/../public", "/public/../admin/x",
                 "/%2e%2e/admin/x", "/public/%2E%2E/admin/x", "/./admin/x"]
AMBIGUOUS = ["/admin%2Fpanel", "/admin%2fpanel", "/public%2F..%2Fadmin", "/admin%5Cpanel", "/admin%00",
             "/admin%0d%0a", "/admin%zz", "/admin%", "/admin%c0%af", "/admin%ff"]


# --- refuse (the default) and rewrite, on a bare app -------------------------------------------------
@pytest.mark.parametrize("target", NON_CANONICAL)
def test_non_canonical_path_is_refused(es256_key: Key, clock: FakeClock, tokens: dict[str, str], target: str) -> None:
    app = Recording()
    middleware = WSGIJWTMiddleware(app, make_auth(es256_key, clock))
    for script in ("", "/api"):
        result = call(middleware, environ(script + target, script=script, AUTHORIZATION=tokens["admin"]))
        assert result.status == 400 and result.headers["www-authenticate"].startswith(
            'Bearer realm="api", error="invalid_request"')
        assert result.json["error_description"] == "The request path is not in canonical form"
    assert app.environs == []


@pytest.mark.parametrize("mode", ["refuse", "rewrite"])
@pytest.mark.parametrize("raw_key", ["RAW_URI", "REQUEST_URI"])
@pytest.mark.parametrize("target", AMBIGUOUS)
def test_ambiguous_path_is_refused_in_both_modes(
    es256_key: Key, clock: FakeClock, tokens: dict[str, str], mode: str, raw_key: str, target: str
) -> None:
    app = Recording()
    middleware = WSGIJWTMiddleware(app, make_auth(es256_key, clock, path_normalization=mode))
    result = call(middleware, environ(target, raw_key=raw_key, AUTHORIZATION=tokens["admin"]))
    assert result.status == 400 and result.json["error"] == "invalid_request"
    assert result.json["error_description"] == "The request path is ambiguous"
    assert app.environs == []


@pytest.mark.parametrize("path_info", ["/admin\xc0\xaf", "/\xff", "/admin\x00", "/admin\\x", "admin"])
def test_path_info_alone_is_checked_without_a_raw_uri(es256_key: Key, clock: FakeClock, path_info: str) -> None:
    """A server that passes no RAW_URI/REQUEST_URI: invalid UTF-8, NUL, backslash still refused."""
    app = Recording()
    env = environ("/x", raw_key=None)
    env["PATH_INFO"] = path_info
    assert call(WSGIJWTMiddleware(app, make_auth(es256_key, clock)), env).status == 400
    assert app.environs == []


def test_rewrite_hands_the_app_the_canonical_path_info_and_uris(es256_key: Key, clock: FakeClock) -> None:
    app = Recording()
    middleware = WSGIJWTMiddleware(app, make_auth(es256_key, clock, path_normalization="rewrite",
                                                  rules=(Rule("/*", access="public"),)))
    env = environ("/api//caf%C3%A9/./a%20b/../x?q=1&r=%2F", script="/api")
    env["REQUEST_URI"] = env["RAW_URI"]
    assert call(middleware, env).status == 200
    seen = app.environs[0]
    assert seen["PATH_INFO"] == "/café/x".encode().decode("latin-1")  # PEP 3333 transport form
    assert seen["SCRIPT_NAME"] == "/api"
    assert seen["RAW_URI"] == seen["REQUEST_URI"] == "/api/caf%C3%A9/x?q=1&r=%2F"
    assert seen[ORIGINAL_PATH_KEY] == {"PATH_INFO": "//café/./a b/../x".encode().decode("latin-1"),
                                       "RAW_URI": "/api//caf%C3%A9/./a%20b/../x?q=1&r=%2F",
                                       "REQUEST_URI": "/api//caf%C3%A9/./a%20b/../x?q=1&r=%2F"}


def test_rewrite_keeps_the_authority_of_an_absolute_form_target(es256_key: Key, clock: FakeClock) -> None:
    app = Recording()
    middleware = WSGIJWTMiddleware(app, make_auth(es256_key, clock, path_normalization="rewrite",
                                                  rules=(Rule("/*", access="public"),)))
    env = environ("/x")
    env.update(PATH_INFO="//public", RAW_URI="http://api.test//public?a=b")
    assert call(middleware, env).status == 200
    assert app.environs[0]["RAW_URI"] == "http://api.test/public?a=b"


def test_refusal_is_audited(es256_key: Key, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    middleware = WSGIJWTMiddleware(Recording(), make_auth(es256_key, clock))
    with caplog.at_level(logging.INFO, logger="jwt_middleware.audit"):
        call(middleware, environ("//admin"))
        call(middleware, environ("/admin%2Fx"))
    assert [r.audit["reason"] for r in caplog.records if hasattr(r, "audit")] == [
        "non_canonical_path", "encoded_separator_in_path"]


# --- methods -------------------------------------------------------------------------------------------
def test_lower_case_method_and_head_meet_their_rules(es256_key: Key, clock: FakeClock, tokens: dict[str, str]) -> None:
    app = Recording()
    middleware = WSGIJWTMiddleware(app, make_auth(es256_key, clock, default_access="public"))
    assert call(middleware, environ("/items/7", method="delete", AUTHORIZATION=tokens["weak"])).status == 403
    assert call(middleware, environ("/reports", method="HEAD")).status == 401
    assert call(middleware, environ("/reports", method="head", AUTHORIZATION=tokens["weak"])).status == 403
    assert app.environs == []


# --- Flask under a SCRIPT_NAME -------------------------------------------------------------------------
def flask_app() -> Any:
    from flask import Flask, request

    app = Flask(__name__)

    @app.get("/admin/<path:rest>")
    def admin(rest: str) -> dict[str, Any]:
        return {"route": "admin", "path": request.path, "script_root": request.script_root}

    @app.get("/public")
    def public() -> dict[str, Any]:
        return {"route": "public", "path": request.path}

    @app.get("/reports")
    def reports() -> dict[str, Any]:
        return {"route": "reports"}

    return app


@pytest.mark.parametrize("mode", ["refuse", "rewrite"])
def test_flask_under_a_script_name(es256_key: Key, clock: FakeClock, tokens: dict[str, str], mode: str) -> None:
    """Werkzeug routes ``//admin/panel`` and ``///admin/users/7`` to /admin/…; never past the rule."""
    flask = flask_app()
    flask.wsgi_app = WSGIJWTMiddleware(flask.wsgi_app, make_auth(es256_key, clock, path_normalization=mode))
    admin = call(flask, environ("/api/admin/panel", script="/api", AUTHORIZATION=tokens["admin"]))
    assert admin.status == 200 and admin.json == {"route": "admin", "path": "/admin/panel", "script_root": "/api"}
    assert call(flask, environ("/api/admin/panel", script="/api", AUTHORIZATION=tokens["weak"])).status == 403
    assert call(flask, environ("/api/public", script="/api")).json == {"route": "public", "path": "/public"}
    for target in ("//admin/panel", "///admin/users/7", "/admin//panel", "/public/../admin/x"):
        weak = call(flask, environ("/api" + target, script="/api", AUTHORIZATION=tokens["weak"]))
        assert weak.status == (400 if mode == "refuse" else 403), target
        strong = call(flask, environ("/api" + target, script="/api", AUTHORIZATION=tokens["admin"]))
        assert strong.status == (400 if mode == "refuse" else 200), target
        if mode == "rewrite":
            assert strong.json["route"] == "admin" and "//" not in strong.json["path"]
    moved = call(flask, environ("/api/admin/../public", script="/api"))
    assert (moved.status, moved.json["path"] if mode == "rewrite" else None) == (
        (200, "/public") if mode == "rewrite" else (400, None))


def test_flask_options_is_not_a_bypass_unless_configured(es256_key: Key, clock: FakeClock) -> None:
    """Flask answers OPTIONS itself for every route; a preflight passes only with preflight="pass"."""
    preflight = {"ORIGIN": "https://app.example", "ACCESS_CONTROL_REQUEST_METHOD": "GET"}
    for setting, status in (("authenticate", 401), ("pass", 200)):
        flask = flask_app()
        flask.wsgi_app = WSGIJWTMiddleware(flask.wsgi_app, make_auth(es256_key, clock, preflight=setting))
        assert call(flask, environ("/admin/panel", method="OPTIONS", **preflight)).status == status


def test_rules_see_the_full_path_when_asked(es256_key: Key, clock: FakeClock) -> None:
    flask = flask_app()
    auth = make_auth(es256_key, clock, match_full_path=True, rules=(Rule("/api/public", access="public"),))
    flask.wsgi_app = WSGIJWTMiddleware(flask.wsgi_app, auth)
    assert call(flask, environ("/api/public", script="/api")).status == 200
    assert call(flask, environ("/public")).status == 401


# --- Django under a SCRIPT_NAME ------------------------------------------------------------------------
@contextmanager
def django_wsgi() -> Iterator[Any]:
    from tests.integrations.apps import _django_setup

    _django_setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    with override_settings(ROOT_URLCONF="tests.wsgi.django_urls", MIDDLEWARE=[]):
        yield WSGIHandler()


@pytest.mark.parametrize("mode", ["refuse", "rewrite"])
def test_django_under_a_script_name(es256_key: Key, clock: FakeClock, tokens: dict[str, str], mode: str) -> None:
    with django_wsgi() as django:
        app = WSGIJWTMiddleware(django, make_auth(es256_key, clock, path_normalization=mode))
        admin = call(app, environ("/api/admin/panel", script="/api", AUTHORIZATION=tokens["admin"]))
        assert admin.status == 200
        assert admin.json == {"route": "admin", "path_info": "/admin/panel", "script_name": "/api"}
        assert call(app, environ("/api/admin/panel", script="/api", AUTHORIZATION=tokens["weak"])).status == 403
        assert call(app, environ("/api/public", script="/api")).json["route"] == "public"
        # Django routes a lower-case method to the view: the DELETE rule still applies
        assert call(app, environ("/api/items/7", script="/api", method="delete",
                                 AUTHORIZATION=tokens["weak"])).status == 403
        assert call(app, environ("/api/items/7", script="/api")).json["route"] == "item"
        moved = call(app, environ("/api/public/../admin/x", script="/api", AUTHORIZATION=tokens["weak"]))
        assert moved.status == (400 if mode == "refuse" else 403)
        back = call(app, environ("/api/admin/%2e%2e/public", script="/api"))
        assert back.status == (400 if mode == "refuse" else 200)
        if mode == "rewrite":
            assert back.json == {"route": "public", "path_info": "/public", "script_name": "/api"}
        # a preflight is no bypass: Django would run the view for OPTIONS
        preflight = call(app, environ("/api/admin/x", script="/api", method="OPTIONS",
                                      ORIGIN="https://app.example", ACCESS_CONTROL_REQUEST_METHOD="DELETE"))
        assert preflight.status == 401


# --- Werkzeug's own server: the request line byte for byte ----------------------------------------------
@contextmanager
def werkzeug_server(app: Any) -> Iterator[int]:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.socket.getsockname()[1]
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.mark.parametrize("mode", ["refuse", "rewrite"])
def test_werkzeug_server_requests_reach_only_what_the_rule_judged(
    es256_key: Key, clock: FakeClock, tokens: dict[str, str], mode: str
) -> None:
    flask = flask_app()
    ran: list[str] = []
    inner = WSGIJWTMiddleware(flask.wsgi_app, make_auth(es256_key, clock, path_normalization=mode))

    def recorded(env: dict[str, Any], start_response: Any) -> Any:
        result = inner(env, start_response)
        if IDENTITY_KEY in env:
            ran.append(env["PATH_INFO"])
        return result

    flask.wsgi_app = recorded
    weak = {"Authorization": tokens["weak"]}
    with werkzeug_server(flask) as port:
        # Werkzeug reads "//admin/panel" as an authority and passes PATH_INFO "/admin/panel" (and
        # "///admin/users/7" as "/admin/users/7"): the rule and the router see that one string, so
        # it is judged (403), not refused
        for target in ("//admin/panel", "///admin/users/7", "/admin//panel", "/public/../admin/x",
                       "/public/%2e%2e/admin/x"):
            status = raw_request(port, f"GET {target} HTTP/1.1", weak)[0]
            assert status in ((400, 403) if mode == "refuse" else (403,)), target
        assert raw_request(port, "GET /admin//panel HTTP/1.1", weak)[0] == (400 if mode == "refuse" else 403)
        for target in ("/admin%2Fpanel", "/admin%5Cpanel", "/admin%00", "/admin%c0%af", "/admin%zz"):
            assert raw_request(port, f"GET {target} HTTP/1.1", weak)[0] == 400, target
        assert raw_request(port, "HEAD /reports HTTP/1.1", weak)[0] == 403
        status, _ = raw_request(port, "GET /admin/../public HTTP/1.1")
        assert status == (400 if mode == "refuse" else 200)
    assert ran == ([] if mode == "refuse" else ["/public"])


def test_django_integration_middleware_sees_path_info_and_refuses_non_canonical(
    es256_key: Key, clock: FakeClock, tokens: dict[str, str]
) -> None:
    """jwt_middleware.integrations.django under a SCRIPT_NAME: rules name Django's routes (the
    path below SCRIPT_NAME), and a non-canonical path is refused (there is nothing to rewrite:
    Django's request already holds its path)."""
    from tests.integrations.apps import _django_setup

    _django_setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    auth = make_auth(es256_key, clock)
    with override_settings(ROOT_URLCONF="tests.wsgi.django_urls", JWT_MIDDLEWARE_AUTHENTICATOR=auth,
                           MIDDLEWARE=["jwt_middleware.integrations.django.JWTAuthenticationMiddleware"]):
        django = WSGIHandler()
        assert call(django, environ("/api/admin/panel", script="/api", AUTHORIZATION=tokens["weak"])).status == 403
        assert call(django, environ("/api/admin/panel", script="/api", AUTHORIZATION=tokens["admin"])).status == 200
        assert call(django, environ("/api/public", script="/api")).json["route"] == "public"
        for target in ("/api/admin//panel", "/api/public/../admin/x", "/api/admin%2Fpanel"):
            answer = call(django, environ(target, script="/api", AUTHORIZATION=tokens["weak"]))
            assert answer.status == 400 and answer.json["error"] == "invalid_request", target
