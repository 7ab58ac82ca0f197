"""A loopback TCP proxy in front of a real server (redis-server) that makes network faults on cue.

Two faults, each one a client of the proxy sees while the server and its other clients carry on:

- ``lose_next_reply()``: the next bytes the server sends are swallowed and both sides closed, as
  a connection reset right after the server answered would (the work is done, the client never
  hears: what a retry has to survive).
- ``cut()`` until ``restore()``: every connection through the proxy is closed and new ones are
  refused (accepted, then closed at once, as a reset would): Redis gone for one worker only, so
  another client can write while this one is disconnected.
"""

from __future__ import annotations

import socket
import threading

from .redis_server import free_port


class LoopbackProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target>; one thread per direction per connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        #: the bytes each lost reply carried, in order (what the server really answered)
        self.lost: list[bytes] = []
        self._lose = threading.Event()
        self._cut = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.1)
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LoopbackProxy:
        self._thread.start()
        return self

    def lose_next_reply(self) -> None:
        """The next server-to-client bytes are dropped and that connection is closed."""
        self._lose.set()

    def cut(self) -> None:
        """Close every connection through the proxy; refuse new ones until restore()."""
        self._cut.set()
        self._close_all()

    def restore(self) -> None:
        self._cut.clear()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        self._close_all()

    def __enter__(self) -> LoopbackProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut.is_set():
                _close(client)
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _close(client)
                continue
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


#: The name the one-time store's retry tests use for it.
ReplyLosingProxy = LoopbackProxy


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
