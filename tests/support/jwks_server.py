"""A real JWKS/OIDC issuer over HTTPS on 127.0.0.1, whose behaviour tests can change live.

Serves ``/.well-known/openid-configuration`` and ``/jwks``; counts requests; can be made slow,
down (connection refused is not possible while bound, so 'down' answers 503 or drops the
connection), to return garbage, a huge body, or a redirect.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class IssuerBehaviour:
    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.cache_control: str | None = "max-age=300"
        self.delay: float = 0.0
        #: "ok", "503", "drop", "garbage", "html", "huge", "redirect-other-host", "not-object"
        self.mode: str = "ok"
        self.issuer_override: str | None = None
        self.requests: dict[str, int] = {}
        self.lock = threading.Lock()

    def count(self, path: str) -> None:
        with self.lock:
            self.requests[path] = self.requests.get(path, 0) + 1

    def hits(self, path: str = "/jwks") -> int:
        with self.lock:
            return self.requests.get(path, 0)


class JWKSServer:
    """Start with ``start()``; ``url`` is the issuer, ``jwks_url`` its key set."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self.behaviour = IssuerBehaviour()
        self._tls = tls
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks"

    def start(self) -> JWKSServer:
        behaviour = self.behaviour
        server_ref = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                behaviour.count(self.path)
                if behaviour.delay:
                    time.sleep(behaviour.delay)
                mode = behaviour.mode
                if mode == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if mode == "503":
                    return self._send(503, b"down", "text/plain")
                if self.path == "/.well-known/openid-configuration":
                    doc = {"issuer": behaviour.issuer_override or server_ref.url, "jwks_uri": server_ref.jwks_url}
                    return self._send(200, json.dumps(doc).encode(), "application/json")
                if self.path != "/jwks":
                    return self._send(404, b"no", "text/plain")
                if mode == "garbage":
                    return self._send(200, b"\x00\xffnot json{", "application/json")
                if mode == "html":
                    return self._send(200, b"<html><body>Maintenance</body></html>", "text/html")
                if mode == "not-object":
                    return self._send(200, b"[1,2,3]", "application/json")
                if mode == "huge":
                    return self._send(200, b'{"keys":[' + b'{"kty":"oct","k":"AAAA"},' * 40000 + b"{}]}", "application/json")
                if mode == "redirect-other-host":
                    self.send_response(302)
                    self.send_header("Location", "https://attacker.invalid/jwks")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                body = json.dumps(behaviour.jwks).encode()
                return self._send(200, body, "application/jwk-set+json")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if behaviour.cache_control and status == 200:
                    self.send_header("Cache-Control", behaviour.cache_control)
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
