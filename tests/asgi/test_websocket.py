"""WebSocket handshakes: an HTTP denial where the server supports it, else close 1008 before accept."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from joserfc.jwk import Key
from websockets.asyncio.client import connect

from jwt_middleware import Authenticator, JWTMiddleware
from jwt_middleware.testing import FakeClock, make_key, mint

from ._app import Recorder, serve

#: uvicorn's legacy "websockets" protocol is deprecated upstream, but still what many deployments run
IMPLEMENTATIONS = [
    pytest.param("websockets", marks=[pytest.mark.filterwarnings("ignore::DeprecationWarning"),
                                      pytest.mark.filterwarnings("ignore:The `websockets` implementation")]),
    "websockets-sansio",
]


@pytest.mark.parametrize("ws", IMPLEMENTATIONS)
async def test_uvicorn_refused_handshake_gets_http_401(
    ws: str, recorder: Recorder, auth: Authenticator, es256_key: Key, clock: FakeClock
) -> None:
    forged = mint(make_key("ES256", kid="es-1"), now=clock.now)
    with serve(recorder.protected(auth), ws=ws) as port:
        for headers in ({}, {"Authorization": f"Bearer {forged}"}):
            with pytest.raises(websockets.exceptions.InvalidStatus) as caught:
                async with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=headers, open_timeout=5):
                    pass  # pragma: no cover - the handshake must fail
            response = caught.value.response
            assert response.status_code == 401
            challenge = response.headers["WWW-Authenticate"]
            assert challenge.startswith('Bearer realm="api"')
            assert ("invalid_token" in challenge) is bool(headers)
            assert response.headers["Cache-Control"] == "no-store"
            assert json.loads(response.body)["error"] in ("unauthorized", "invalid_token")
    assert recorder.calls == 0


@pytest.mark.parametrize("ws", IMPLEMENTATIONS)
async def test_uvicorn_accepted_socket_sees_the_user(
    ws: str, recorder: Recorder, auth: Authenticator, es256_key: Key, clock: FakeClock
) -> None:
    token = mint(es256_key, {"sub": "erin"}, now=clock.now)
    with serve(recorder.protected(auth), ws=ws) as port:
        async with connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {token}"},
                           open_timeout=5) as socket:
            message = json.loads(await asyncio.wait_for(socket.recv(), 5))
    assert message == {"authenticated": True, "display_name": "erin", "subject": "erin"}
    assert recorder.calls == 1


# --- direct ASGI calls: a server with and without the denial-response extension -------------------------
class Channel:
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def ws_scope(headers: list[tuple[bytes, bytes]], extensions: dict[str, Any] | None = None) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": "/ws",
                             "raw_path": b"/ws", "query_string": b"", "headers": headers,
                             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "subprotocols": []}
    if extensions is not None:
        scope["extensions"] = extensions
    return scope


@pytest.mark.parametrize("extensions", [None, {}, {"websocket.other": {}}], ids=["none", "empty", "other"])
async def test_without_denial_extension_closes_1008_before_accept(
    recorder: Recorder, auth: Authenticator, clock: FakeClock, extensions: dict[str, Any] | None
) -> None:
    forged = mint(make_key("ES256", kid="es-1"), now=clock.now)
    channel = Channel()
    await channel.inbox.put({"type": "websocket.connect"})
    scope = ws_scope([(b"authorization", f"Bearer {forged}".encode())], extensions)
    await asyncio.wait_for(recorder.protected(auth)(scope, channel.receive, channel.send), 5)
    assert channel.sent == [{"type": "websocket.close", "code": 1008}]
    assert recorder.calls == 0


async def test_with_denial_extension_sends_http_response(recorder: Recorder, auth: Authenticator) -> None:
    channel = Channel()
    scope = ws_scope([], {"websocket.http.response": {}})
    await asyncio.wait_for(recorder.protected(auth)(scope, channel.receive, channel.send), 5)
    start, body = channel.sent
    assert start["type"] == "websocket.http.response.start" and start["status"] == 401
    assert (b"www-authenticate", b'Bearer realm="api"') in start["headers"]
    assert body["type"] == "websocket.http.response.body" and json.loads(body["body"])["error"] == "unauthorized"
    assert not any(m["type"] == "websocket.accept" for m in channel.sent)
    assert recorder.calls == 0


async def test_direct_accepted_socket_sees_the_user(auth: Authenticator, es256_key: Key, clock: FakeClock) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen["user"] = scope["user"]
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    token = mint(es256_key, {"sub": "frank"}, now=clock.now)
    channel = Channel()
    await channel.inbox.put({"type": "websocket.connect"})
    await JWTMiddleware(app, auth)(ws_scope([(b"authorization", f"Bearer {token}".encode())]),
                                   channel.receive, channel.send)
    assert seen["user"].display_name == "frank"
    assert channel.sent[0] == {"type": "websocket.accept"}


async def test_websocket_rules_match_as_get(es256_key: Key, clock: FakeClock) -> None:
    """A public GET rule covers the handshake (an Upgrade is a GET); a POST-only rule does not."""
    from jwt_middleware import Config, Issuer, Rule, StaticKeys
    from jwt_middleware.testing import public_jwks

    issuer = Issuer("https://issuer.test", algorithms=("ES256",), keys=StaticKeys(public_jwks(es256_key)))
    for methods, accepted in ((("GET",), True), (("POST",), False)):
        auth = Authenticator(Config(issuers=[issuer], audience="api", clock=clock,
                                    rules=(Rule("/ws", access="public", methods=methods),)))
        recorder = Recorder()
        channel = Channel()
        await channel.inbox.put({"type": "websocket.connect"})
        await channel.inbox.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(recorder.protected(auth)(ws_scope([]), channel.receive, channel.send), 5)
        assert (recorder.calls == 1) is accepted
