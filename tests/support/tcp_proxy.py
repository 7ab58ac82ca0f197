"""A loopback TCP proxy that can lose one reply: the server did the work, the client never hears.

Put between a client and a real server (redis-server) to make the fault a retry has to survive:
``lose_next_reply()`` makes the proxy swallow the next bytes the server sends and close both
sides, as a connection reset right after the server answered would.
"""

from __future__ import annotations

import socket
import threading

from .redis_server import free_port


class ReplyLosingProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target>; one thread per direction per connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        #: the bytes each lost reply carried, in order (what the server really answered)
        self.lost: list[bytes] = []
        self._lose = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ReplyLosingProxy:
        self._thread.start()
        return self

    def lose_next_reply(self) -> None:
        """The next server-to-client bytes are dropped and that connection is closed."""
        self._lose.set()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()

    def __enter__(self) -> ReplyLosingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            client.settimeout(None)
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while data := source.recv(65536):
                if replies and self._lose.is_set():
                    self._lose.clear()
                    self.lost.append(data)
                    break
                sink.sendall(data)
        except OSError:
            pass
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
