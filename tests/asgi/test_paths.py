"""Rules decide on the request the app will route: canonical path, root_path, method case, HEAD, preflight.

Most cases are direct ASGI calls, so the scope carries exactly the ``path`` and ``raw_path`` a
server would (httpx would normalise the target before it left the process); the uvicorn cases
at the end send the request line byte for byte over a socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from joserfc.jwk import Key
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from jwt_middleware import Authenticator, Config, Issuer, JWTMiddleware, Rule, StaticKeys
from jwt_middleware.asgi import ORIGINAL_PATH_KEY
from jwt_middleware.testing import FakeClock, mint, public_jwks
from tests.support.raw_http import raw_request

from ._app import serve
from .conftest import ISSUER

RULES = (
    Rule("/public", access="public"),
    Rule("/admin/*", scopes=("admin",)),
    Rule("/items/{id}", methods=("DELETE",), scopes=("delete",)),
    Rule("/items/{id}", access="public"),
    Rule("/reports", methods=("GET",), scopes=("reports",)),
    Rule("/ws", access="optional"),
)


def make_auth(key: Key, clock: FakeClock, **config: Any) -> Authenticator:
    issuer = Issuer(ISSUER, algorithms=("ES256",), keys=StaticKeys(public_jwks(key)))
    config.setdefault("rules", RULES)
    return Authenticator(Config(issuers=[issuer], audience="api", clock=clock, **config))


@dataclass
class Routed:
    """The protected Starlette app: which route ran, and the path and raw_path it was given."""

    seen: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def endpoint(request: Request) -> JSONResponse:
            seen = {"route": request.scope["route_name"], "path": request.scope["path"],
                    "raw_path": request.scope.get("raw_path"), "user": request.user.display_name}
            self.seen.append(seen)
            return JSONResponse({k: v for k, v in seen.items() if k != "raw_path"})

        def route(path: str, name: str, **kwargs: Any) -> Route:
            async def named(request: Request) -> JSONResponse:
                request.scope["route_name"] = name
                return await endpoint(request)

            return Route(path, named, **kwargs)

        async def ws(websocket: WebSocket) -> None:
            self.seen.append({"route": "ws", "path": websocket.scope["path"]})
            await websocket.accept()
            await websocket.close()

        return Starlette(routes=[
            route("/public", "public"),
            route("/admin/{rest:path}", "admin"),
            route("/items/{id:int}", "item", methods=["GET", "DELETE"]),
            route("/reports", "reports", methods=["GET"]),
            WebSocketRoute("/ws", ws),
        ])


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @property
    def challenge(self) -> str:
        return dict(self.headers)[b"www-authenticate"].decode()

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def http_scope(path: str, raw_path: bytes | None = None, *, method: str = "GET", root_path: str = "",
               headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """A scope as uvicorn builds it: ``path`` decoded and prefixed with ``root_path``, ``raw_path`` as sent."""
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": root_path + path, "root_path": root_path, "query_string": b"", "headers": headers or [],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
    }
    if raw_path is not None:
        scope["raw_path"] = root_path.encode() + raw_path
    return scope


async def call(app: Any, scope: dict[str, Any]) -> Answer:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 5)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], start["headers"], body)


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


@pytest.fixture
def tokens(es256_key: Key, clock: FakeClock) -> dict[str, list[tuple[bytes, bytes]]]:
    return {name: bearer(mint(es256_key, {"sub": name, "scope": scope}, now=clock.now))
            for name, scope in (("weak", "read"), ("admin", "admin"))}


def assert_bad_request(answer: Answer) -> None:
    assert answer.status == 400
    assert answer.challenge.startswith('Bearer realm="api", error="invalid_request"')
    assert answer.json["error"] == "invalid_request"


#: (decoded path, raw path as sent): each reached an /admin handler past an /admin/* rule, or
#: the public handler's rule while the router took it elsewhere
NON_CANONICAL = [
    ("//admin/panel", b"//admin/panel"),
    ("///admin/users/7", b"///admin/users/7"),
    ("/admin//panel", b"/admin//panel"),
    ("/admin/../public", b"/admin/../public"),
    ("/public/../admin/x", b"/public/../admin/x"),
    ("/../admin/x", b"/%2e%2e/admin/x"),
    ("/./admin/x", b"/./admin/x"),
]
AMBIGUOUS = [
    ("/admin/panel", b"/admin%2Fpanel"),
    ("/public/../admin", b"/public%2F..%2Fadmin"),
    ("/admin\\panel", b"/admin%5Cpanel"),
    ("/admin\\panel", b"/admin\\panel"),
    ("/admin\x00", b"/admin%00"),
    ("/admin%zz", b"/admin%zz"),
    ("/\ufffd", b"/%c0%af"),
    ("/\ufffd", b"/%ff"),
]


# --- path_normalization="refuse" (the default) -----------------------------------------------------------
@pytest.mark.parametrize(("path", "raw"), NON_CANONICAL, ids=[p for p, _ in NON_CANONICAL])
async def test_non_canonical_path_is_refused_before_any_rule(
    es256_key: Key, clock: FakeClock, tokens: dict[str, Any], path: str, raw: bytes
) -> None:
    routed = Routed()
    app = JWTMiddleware(routed.app(), make_auth(es256_key, clock))
    no_token: list[tuple[bytes, bytes]] = []
    for headers in (no_token, tokens["weak"], tokens["admin"]):
        answer = await call(app, http_scope(path, raw, headers=headers))
        assert_bad_request(answer)
        assert answer.json["error_description"] == "The request path is not in canonical form"
    assert routed.seen == []


@pytest.mark.parametrize("mode", ["refuse", "rewrite"])
@pytest.mark.parametrize(("path", "raw"), AMBIGUOUS, ids=[repr(r) for _, r in AMBIGUOUS])
async def test_ambiguous_path_is_refused_in_both_modes(
    es256_key: Key, clock: FakeClock, tokens: dict[str, Any], mode: str, path: str, raw: bytes
) -> None:
    routed = Routed()
    app = JWTMiddleware(routed.app(), make_auth(es256_key, clock, path_normalization=mode))
    answer = await call(app, http_scope(path, raw, headers=tokens["admin"]))
    assert_bad_request(answer)
    assert answer.json["error_description"] == "The request path is ambiguous"
    assert raw.decode("latin-1") not in answer.body.decode("latin-1")
    assert routed.seen == []


async def test_canonical_paths_pass_unchanged(es256_key: Key, clock: FakeClock, tokens: dict[str, Any]) -> None:
    routed = Routed()
    app = JWTMiddleware(routed.app(), make_auth(es256_key, clock))
    assert (await call(app, http_scope("/public", b"/public"))).json["route"] == "public"
    assert (await call(app, http_scope("/admin/panel", b"/%61dmin/panel", headers=tokens["weak"]))).status == 403
    answer = await call(app, http_scope("/admin/panel", b"/admin/panel", headers=tokens["admin"]))
    assert answer.status == 200 and answer.json == {"route": "admin", "path": "/admin/panel", "user": "admin"}
    assert ORIGINAL_PATH_KEY not in routed.seen[-1]


async def test_refusal_is_audited(es256_key: Key, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    app = JWTMiddleware(Routed().app(), make_auth(es256_key, clock))
    with caplog.at_level(logging.INFO, logger="jwt_middleware.audit"):
        await call(app, http_scope("//admin", b"//admin"))
        await call(app, http_scope("/admin/x", b"/admin%2Fx"))
    reasons = [r.audit["reason"] for r in caplog.records if hasattr(r, "audit")]
    assert reasons == ["non_canonical_path", "encoded_separator_in_path"]
    assert all(r.audit["outcome"] == "deny" and r.audit["status"] == 400 for r in caplog.records)  # type: ignore[attr-defined]


# --- path_normalization="rewrite" ------------------------------------------------------------------------
async def test_rewrite_hands_the_app_the_path_the_rule_judged(
    es256_key: Key, clock: FakeClock, tokens: dict[str, Any]
) -> None:
    routed = Routed()
    app = JWTMiddleware(routed.app(), make_auth(es256_key, clock, path_normalization="rewrite"))
    for path, raw in NON_CANONICAL:
        canonical = "/public" if path == "/admin/../public" else None
        if canonical:
            answer = await call(app, http_scope(path, raw))
            assert answer.status == 200 and answer.json["route"] == "public" and answer.json["path"] == "/public"
            continue
        assert (await call(app, http_scope(path, raw))).status == 401, path
        assert (await call(app, http_scope(path, raw, headers=tokens["weak"]))).status == 403, path
        answer = await call(app, http_scope(path, raw, headers=tokens["admin"]))
        assert answer.status == 200 and answer.json["route"] == "admin", path
        assert "//" not in answer.json["path"] and "/." not in answer.json["path"]
        assert routed.seen[-1]["raw_path"] == answer.json["path"].encode()


async def test_rewrite_keeps_root_path_and_encodes_raw_path(es256_key: Key, clock: FakeClock) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    protected = JWTMiddleware(app, make_auth(es256_key, clock, path_normalization="rewrite",
                                             rules=(Rule("/*", access="public"),)))
    scope = http_scope("//caf%C3%A9/./a b", b"//caf%C3%A9/./a%20b", root_path="/api")
    scope["path"] = "/api//café/./a b"
    assert (await call(protected, scope)).status == 204
    assert seen["path"] == "/api/café/a b" and seen["raw_path"] == b"/api/caf%C3%A9/a%20b"
    assert seen["root_path"] == "/api"
    assert seen[ORIGINAL_PATH_KEY] == ("/api//café/./a b", b"/api//caf%C3%A9/./a%20b")


# --- methods ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["DELETE", "delete", "Delete"])
async def test_method_rule_applies_whatever_the_case(
    es256_key: Key, clock: FakeClock, tokens: dict[str, Any], method: str
) -> None:
    """uvicorn with h11 passes ``delete`` as sent; Django would route it to the view."""
    routed = Routed()
    app = JWTMiddleware(routed.app(), make_auth(es256_key, clock))
    assert (await call(app, http_scope("/items/7", b"/items/7", method=method))).status == 401
    assert (await call(app, http_scope("/items/7", b"/items/7", method=method, headers=tokens["weak"]))).status == 403
    assert routed.seen == []
    assert (await call(app, http_scope("/items/7", b"/items/7"))).json["route"] == "item"  # GET: public


async def test_head_runs_the_get_handler_so_the_get_rule_applies(
    es256_key: Key, clock: FakeClock, tokens: dict[str, Any]
) -> None:
    routed = Routed()
    app = JWTMiddleware(routed.app(), make_auth(es256_key, clock, default_access="public"))
    assert (await call(app, http_scope("/reports", b"/reports", method="HEAD"))).status == 401
    assert (await call(app, http_scope("/reports", b"/reports", method="HEAD", headers=tokens["weak"]))).status == 403
    assert routed.seen == []


# --- CORS preflight ---------------------------------------------------------------------------------
PREFLIGHT = [(b"origin", b"https://app.example"), (b"access-control-request-method", b"DELETE")]


async def test_preflight_is_authenticated_by_default(es256_key: Key, clock: FakeClock) -> None:
    routed = Routed()
    app = JWTMiddleware(routed.app(), make_auth(es256_key, clock))
    answer = await call(app, http_scope("/admin/users", b"/admin/users", method="OPTIONS", headers=PREFLIGHT))
    assert answer.status == 401 and answer.challenge == 'Bearer realm="api"'
    assert routed.seen == []


async def test_preflight_pass_reaches_cors_middleware_inside(es256_key: Key, clock: FakeClock) -> None:
    """The documented set-up: CORSMiddleware inside, so the preflight is answered, no handler runs."""
    routed = Routed()
    inner = routed.app()
    cors = CORSMiddleware(inner, allow_origins=["https://app.example"], allow_methods=["DELETE"],
                          allow_headers=["authorization"])
    app = JWTMiddleware(cors, make_auth(es256_key, clock, preflight="pass"))
    answer = await call(app, http_scope("/admin/users", b"/admin/users", method="OPTIONS", headers=PREFLIGHT))
    assert answer.status == 200
    assert dict(answer.headers)[b"access-control-allow-origin"] == b"https://app.example"
    assert routed.seen == []
    # the request the preflight announced still needs its token
    answer = await call(app, http_scope("/admin/users", b"/admin/users", method="DELETE", headers=PREFLIGHT[:1]))
    assert answer.status == 401


async def test_preflight_pass_still_refuses_a_non_canonical_path(es256_key: Key, clock: FakeClock) -> None:
    app = JWTMiddleware(Routed().app(), make_auth(es256_key, clock, preflight="pass"))
    answer = await call(app, http_scope("//admin/users", b"//admin/users", method="OPTIONS", headers=PREFLIGHT))
    assert answer.status == 400


# --- root_path -----------------------------------------------------------------------------------------
async def test_starlette_mount_rules_name_the_sub_apps_routes(
    es256_key: Key, clock: FakeClock, tokens: dict[str, Any]
) -> None:
    routed = Routed()
    outer = Starlette(routes=[Mount("/sub", app=JWTMiddleware(routed.app(), make_auth(es256_key, clock)))])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/sub/admin/panel")).status_code == 401
        assert (await client.get("/sub/admin/panel", headers={"authorization": tokens["weak"][0][1].decode()})
                ).status_code == 403
        public = await client.get("/sub/public")
        assert public.status_code == 200 and public.json()["route"] == "public"


async def test_match_full_path_sees_root_path_in_front(es256_key: Key, clock: FakeClock) -> None:
    auth = make_auth(es256_key, clock, match_full_path=True, rules=(Rule("/sub/public", access="public"),))
    routed = Routed()
    outer = Starlette(routes=[Mount("/sub", app=JWTMiddleware(routed.app(), auth))])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/sub/public")).status_code == 200
        assert (await client.get("/sub/admin/x")).status_code == 401


async def test_the_mount_point_itself_is_slash(es256_key: Key, clock: FakeClock) -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    protected = JWTMiddleware(app, make_auth(es256_key, clock, rules=(Rule("/", access="public"),)))
    assert (await call(protected, http_scope("", b"", root_path="/api"))).status == 204
    assert (await call(protected, http_scope("/", b"/", root_path="/api"))).status == 204
    assert (await call(protected, http_scope("x", b"x", root_path="/api"))).status == 401  # /apix: not below
    assert seen == ["/api", "/api/"]


def fastapi_app(auth: Authenticator, **options: Any) -> Any:
    from fastapi import FastAPI

    app = FastAPI(**options)

    @app.get("/admin/panel")
    async def admin(request: Request) -> dict[str, Any]:
        return {"route": "admin", "root_path": request.scope.get("root_path")}

    @app.get("/public")
    async def public() -> dict[str, Any]:
        return {"route": "public"}

    app.add_middleware(JWTMiddleware, authenticator=auth)
    return app


def test_fastapi_behind_uvicorn_root_path(es256_key: Key, clock: FakeClock, tokens: dict[str, Any]) -> None:
    """FastAPI's documented set-up: a proxy strips /api, ``uvicorn --root-path /api``; rules are
    written like the app's routes."""
    weak = tokens["weak"][0][1].decode()
    with serve(fastapi_app(make_auth(es256_key, clock)), root_path="/api") as port, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert client.get("/admin/panel").status_code == 401
        assert client.get("/admin/panel", headers={"authorization": weak}).status_code == 403
        admin = client.get("/admin/panel", headers={"authorization": tokens["admin"][0][1].decode()})
        assert admin.status_code == 200 and admin.json() == {"route": "admin", "root_path": "/api"}
        assert client.get("/public").json() == {"route": "public"}


@pytest.mark.filterwarnings("ignore:The `root_path` parameter is deprecated")
async def test_fastapi_root_path_parameter(es256_key: Key, clock: FakeClock, tokens: dict[str, Any]) -> None:
    """``FastAPI(root_path=...)`` sets the scope's root_path; the path may or may not carry it."""
    app = fastapi_app(make_auth(es256_key, clock), root_path="/api")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for path in ("/admin/panel", "/api/admin/panel"):
            assert (await client.get(path)).status_code == 401, path
            assert (await client.get(path, headers={"authorization": tokens["weak"][0][1].decode()})
                    ).status_code == 403, path
        assert (await client.get("/public")).json() == {"route": "public"}


# --- WebSocket --------------------------------------------------------------------------------------
def ws_scope(path: str, raw_path: bytes, extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": path, "raw_path": raw_path,
            "root_path": "", "query_string": b"", "headers": [], "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 80), "subprotocols": [], "extensions": extensions or {}}


async def ws_call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in ({"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}):
        inbox.put_nowait(message)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, inbox.get, send), 5)
    return sent


async def test_websocket_with_a_non_canonical_path_is_refused_or_rewritten(es256_key: Key, clock: FakeClock) -> None:
    routed = Routed()
    refusing = JWTMiddleware(routed.app(), make_auth(es256_key, clock))
    assert await ws_call(refusing, ws_scope("//ws", b"//ws")) == [{"type": "websocket.close", "code": 1008}]
    denial = await ws_call(refusing, ws_scope("/ws/../ws", b"/ws/../ws", {"websocket.http.response": {}}))
    assert denial[0]["type"] == "websocket.http.response.start" and denial[0]["status"] == 400
    assert await ws_call(refusing, ws_scope("/ws", b"/w%2Fs")) == [{"type": "websocket.close", "code": 1008}]
    assert routed.seen == []
    rewriting = JWTMiddleware(routed.app(), make_auth(es256_key, clock, path_normalization="rewrite"))
    sent = await ws_call(rewriting, ws_scope("//ws", b"//ws"))
    assert sent[0]["type"] == "websocket.accept" and routed.seen == [{"route": "ws", "path": "/ws"}]


# --- a real uvicorn, the request line byte for byte ------------------------------------------------------
@pytest.mark.parametrize("mode", ["refuse", "rewrite"])
def test_uvicorn_requests_reach_only_what_the_rule_judged(
    es256_key: Key, clock: FakeClock, tokens: dict[str, Any], mode: str
) -> None:
    routed = Routed()
    weak = {"Authorization": tokens["weak"][0][1].decode()}
    with serve(JWTMiddleware(routed.app(), make_auth(es256_key, clock, path_normalization=mode))) as port:
        for target in ("//admin/panel", "///admin/users/7", "/admin//panel", "/public/../admin/x",
                       "/public/%2e%2e/admin/x"):
            status, _ = raw_request(port, f"GET {target} HTTP/1.1", weak)
            assert status == (400 if mode == "refuse" else 403), target
        for target in ("/admin%2Fpanel", "/admin%5Cpanel", "/admin%00", "/admin%c0%af", "/admin%zz"):
            assert raw_request(port, f"GET {target} HTTP/1.1", weak)[0] == 400, target
        assert raw_request(port, "delete /items/7 HTTP/1.1", weak)[0] == 403
        assert raw_request(port, "HEAD /reports HTTP/1.1", weak)[0] == 403
        status, body = raw_request(port, "GET /admin/../public HTTP/1.1")
        assert status == (400 if mode == "refuse" else 200)
        if mode == "rewrite":
            assert json.loads(body)["route"] == "public"
    assert all(seen["route"] == "public" for seen in routed.seen)
