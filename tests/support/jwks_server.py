"""A real JWKS/OIDC issuer over HTTPS on 127.0.0.1, whose behaviour tests can change live.

Serves ``/.well-known/openid-configuration`` and ``/jwks``; counts requests; can be made slow,
down (connection refused is not possible while bound, so 'down' answers 503 or drops the
connection), to return garbage, a huge body, or a redirect, or to drip its answer byte by byte.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: a JWKS-looking document of about 1 MB, far over any sane size cap
HUGE_JWKS = b'{"keys":[' + b'{"kty":"oct","k":"AAAA"},' * 40000 + b"{}]}"

class IssuerBehaviour:
    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.cache_control: str | None = "max-age=300"
        self.delay: float = 0.0
        #: "ok", "503", "drop", "garbage", "html", "huge", "redirect-other-host", "not-object",
        #: "redirect-same-host" (/jwks → /jwks-moved, same origin), "trickle-body" (headers at once,
        #: then one body byte per ``trickle_interval``), "trickle-headers" (the head itself dripped),
        #: "huge-unannounced" (a huge body without Content-Length, ended by closing the connection)
        self.mode: str = "ok"
        self.trickle_interval: float = 0.2
        self.issuer_override: str | None = None
        #: the discovery document's ``jwks_uri`` (default: this server's /jwks)
        self.jwks_uri_override: str | None = None
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
                    doc = {
                        "issuer": behaviour.issuer_override or server_ref.url,
                        "jwks_uri": behaviour.jwks_uri_override or server_ref.jwks_url,
                    }
                    return self._send(200, json.dumps(doc).encode(), "application/json")
                if mode == "redirect-same-host" and self.path == "/jwks":
                    return self._redirect("/jwks-moved")
                if self.path == "/jwks-moved":
                    return self._send(200, json.dumps(behaviour.jwks).encode(), "application/jwk-set+json")
                if self.path != "/jwks":
                    return self._send(404, b"no", "text/plain")
                if mode == "garbage":
                    return self._send(200, b"\x00\xffnot json{", "application/json")
                if mode == "html":
                    return self._send(200, b"<html><body>Maintenance</body></html>", "text/html")
                if mode == "not-object":
                    return self._send(200, b"[1,2,3]", "application/json")
                if mode == "huge":
                    return self._send(200, HUGE_JWKS, "application/json")
                if mode == "redirect-other-host":
                    return self._redirect("https://attacker.invalid/jwks")
                if mode == "huge-unannounced":
                    return self._send_until_close(HUGE_JWKS)
                body = json.dumps(behaviour.jwks).encode()
                if mode in ("trickle-body", "trickle-headers"):
                    return self._trickle(body, headers_too=mode == "trickle-headers")
                return self._send(200, body, "application/jwk-set+json")

            def _send_until_close(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    self.wfile.write(body)
                except OSError:  # the client stopped reading at its cap
                    pass

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _trickle(self, body: bytes, *, headers_too: bool) -> None:
                """A slowloris answer: every gap is below a read timeout, the whole is not."""
                head = (
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"X-Padding: {'p' * 40}\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                try:
                    if not headers_too:
                        self.wfile.write(head)
                        self.wfile.flush()
                    for byte in (head if headers_too else b"") + body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(behaviour.trickle_interval)
                except OSError:  # the client gave up, as it should
                    self.close_connection = True

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if behaviour.cache_control and status == 200:
                    self.send_header("Cache-Control", behaviour.cache_control)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:  # the client hung up (a size cap or a timeout on its side)
                    self.close_connection = True

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
