"""Send one HTTP/1.1 request with its request line exactly as given, and read the answer.

httpx and requests normalise the target (dot segments, repeated slashes, escapes) before it
leaves the process, which would hide exactly the bugs the differential matrix looks for; this
client writes ``METHOD target HTTP/1.1`` byte for byte.
"""

from __future__ import annotations

import base64
import os
import socket
from dataclasses import dataclass, field

__all__ = ["Answer", "raw_request", "send", "websocket_headers"]

_TIMEOUT = 5.0  # seconds for connect and for each read
_MAX_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Answer:
    """Status, headers (lower-case names, in order) and body of one response."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


def websocket_headers() -> dict[str, str]:
    """The headers of a WebSocket opening handshake (RFC 6455 §4.1)."""
    return {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode("ascii"),
    }


def send(port: int, method: str, target: str, headers: dict[str, str]) -> Answer:
    """One request on a new connection to 127.0.0.1:port; the target goes out unchanged.

    A server that closes the connection without answering (its parser refused the request line)
    is reported as status 0.
    """
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if "Connection" not in headers:
        lines.append("Connection: close")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=_TIMEOUT) as sock:
        sock.sendall(raw)
        return _read(sock, head_only=method.upper() == "HEAD")


def raw_request(port: int, line: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Send the request ``line`` (``"GET //x HTTP/1.1"``) unchanged; the status and body."""
    method, target, _ = line.split(" ", 2)
    answer = send(port, method, target, headers or {})
    return answer.status, answer.body


def _read(sock: socket.socket, *, head_only: bool) -> Answer:
    """Read the status line and headers, then the body as the headers frame it."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = _recv(sock)
        if not chunk:
            if not buffer:
                return Answer(0)
            raise ConnectionError(f"connection closed inside the response head: {buffer[:200]!r}")
        buffer += chunk
    head, _, rest = buffer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in header_lines)]
    if head_only or status in (101, 204, 304) or 100 <= status < 200:
        return Answer(status, headers)
    return Answer(status, headers, _body(sock, rest, dict(headers)))


def _body(sock: socket.socket, rest: bytes, headers: dict[str, str]) -> bytes:
    if "content-length" in headers:
        return _exactly(sock, rest, int(headers["content-length"]))
    data = rest
    while len(data) < _MAX_BYTES and (chunk := _recv(sock)):
        data += chunk
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return _unchunk(data)
    return data


def _exactly(sock: socket.socket, data: bytes, length: int) -> bytes:
    while len(data) < length and (chunk := _recv(sock)):
        data += chunk
    return data[:length]


def _unchunk(data: bytes) -> bytes:
    """RFC 9112 §7.1 chunked coding (extensions and trailers ignored)."""
    body = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        body, data = body + data[:size], data[size + 2 :]
    return body


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""
