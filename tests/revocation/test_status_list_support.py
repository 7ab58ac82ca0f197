"""Helpers for the Token Status List tests: an independent list encoder and signer, a joserfc
verifier, and a real HTTPS server whose answers tests set per path. No tests here.

The encoder is written from the draft (§4.1: bits packed from the least significant bit,
zlib-deflated, base64url without padding) with Python's zlib and joserfc, never through
jwt_middleware, so a test compares our decoder with an implementation of its own.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from jwt_middleware.errors import InvalidToken
from jwt_middleware.revocation.status_list import VerifyListToken

__all__ = [
    "Route",
    "StatusListServer",
    "b64url",
    "byte_array",
    "encode_lst",
    "joserfc_verifier",
    "list_claims",
    "sign_list_token",
    "sign_raw",
    "start_status_server",
]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def byte_array(statuses: Mapping[int, int], bits: int, size: int) -> bytes:
    """The uncompressed array of ``size`` entries (draft §4.1 step 3), all others 0."""
    per_byte = 8 // bits
    array = bytearray(-(-size // per_byte))
    for idx, value in statuses.items():
        array[idx // per_byte] |= value << ((idx % per_byte) * bits)
    return bytes(array)


def encode_lst(statuses: Mapping[int, int], bits: int, size: int) -> str:
    """``lst`` for these entries: zlib at the highest level (draft §4.1 step 4), base64url."""
    return b64url(zlib.compress(byte_array(statuses, bits, size), 9))


def list_claims(uri: str, lst: str, bits: int, *, now: float, **extra: Any) -> dict[str, Any]:
    """The claims of a Status List Token (draft §5.1); ``extra`` adds or (None) removes one."""
    claims: dict[str, Any] = {
        "sub": uri,
        "iat": int(now),
        "exp": int(now + 86400),
        "ttl": 600,
        "status_list": {"bits": bits, "lst": lst},
    }
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


def sign_list_token(
    key: Key, claims: Mapping[str, Any], *, typ: str = "statuslist+jwt", **header: Any
) -> str:
    """A compact JWS signed by joserfc directly; ``typ`` and extra header members as given."""
    protected: dict[str, Any] = {"alg": "ES256", "kid": key.kid, "typ": typ, **header}
    protected = {k: v for k, v in protected.items() if v is not None}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.serialize_compact(protected, payload, key, algorithms=["ES256"])


def sign_raw(key: Key, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """Exactly this header, signed with joserfc's ES256 primitive (no header policy on the way)."""
    signing_input = ".".join(b64url(json.dumps(part).encode()) for part in (header, claims))
    signature = jws.JWSRegistry.algorithms["ES256"].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64url(signature)}"


def joserfc_verifier(*keys: Key, max_payload: int = 16 * 1024 * 1024) -> VerifyListToken:
    """``verify(compact) -> (header, claims)`` over these public keys; InvalidToken on failure.

    joserfc's registry caps payloads at 128 KB by default; real lists are larger (draft §A).
    """
    keyset = KeySet.import_key_set({"keys": [k.as_dict(private=False) for k in keys]})

    def verify(compact: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
        registry = jws.JWSRegistry(algorithms=["ES256"], strict_check_header=False)
        registry.max_payload_length = max_payload
        try:
            token = jws.deserialize_compact(compact, keyset, algorithms=["ES256"], registry=registry)
            claims = json.loads(token.payload)
        except (JoseError, ValueError):
            raise InvalidToken("bad_signature") from None
        return token.headers(), claims

    return verify


@dataclass
class Route:
    """One path's answer. ``trickle``: seconds between body bytes; ``length``: send
    Content-Length (else the body ends when the connection closes); ``gzip``: compress."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    trickle: float = 0.0
    length: bool = True
    gzip: bool = False


class StatusListServer:
    """A real HTTP(S) server on 127.0.0.1; ``serve(path, ...)`` sets an answer, ``hits`` counts."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self._tls = tls
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.request_headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def serve(self, path: str, body: bytes | str = b"", **route: Any) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(data, **route)
        return self.url + path

    def count(self, path: str) -> int:
        with self.lock:
            return self.hits.get(path, 0)

    def start(self) -> StatusListServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with owner.lock:
                    owner.hits[self.path] = owner.hits.get(self.path, 0) + 1
                    owner.request_headers.append({k.lower(): v for k, v in self.headers.items()})
                route = owner.routes.get(self.path)
                if route is None:
                    route = Route(b"not found", status=404)
                if route.delay:
                    time.sleep(route.delay)
                body = gzip.compress(route.body) if route.gzip else route.body
                self.send_response(route.status)
                self.send_header("Content-Type", "application/statuslist+jwt")
                if route.gzip:
                    self.send_header("Content-Encoding", "gzip")
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.length:
                    self.send_header("Content-Length", str(len(body)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                try:
                    if route.trickle:
                        for byte in body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(route.trickle)
                    else:
                        self.wfile.write(body)
                except OSError:  # the client stopped reading: a cap or a deadline on its side
                    self.close_connection = True

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def start_status_server(ca: trustme.CA | None, *names: str) -> StatusListServer:
    """An HTTPS server with a certificate from ``ca`` for ``names`` (HTTP when ``ca`` is None)."""
    if ca is None:
        return StatusListServer(None).start()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(names or ("127.0.0.1", "localhost"))).configure_cert(server_tls)
    return StatusListServer(server_tls).start()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
