"""A TCP proxy in front of the test PostgreSQL that a test can cut and restore.

It gives one test an outage of its own without stopping the server every other test shares:
`cut("refuse")` drops every open connection and closes each new one at once (a server that is down
or restarting); `cut("blackhole")` drops them and then accepts new ones but never answers (a host
that has vanished, where only a connect timeout helps); `restore()` forwards again.
"""

from __future__ import annotations

import socket
import threading
from typing import Literal

from psycopg.conninfo import conninfo_to_dict, make_conninfo

Mode = Literal["up", "refuse", "blackhole"]


class PgProxy:
    def __init__(self, target_url: str) -> None:
        self.params = conninfo_to_dict(target_url)
        self.mode: Mode = "up"
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        """The target's DSN with the proxy as host and port."""
        return make_conninfo("", **{**self.params, "host": "127.0.0.1", "port": str(self.port)})

    def cut(self, mode: Mode) -> None:
        with self._lock:
            self.mode = mode
            self._close_all()

    def restore(self) -> None:
        with self._lock:
            self.mode = "up"
            self._close_all()  # blackholed sockets: their clients see the drop and reconnect

    def close(self) -> None:
        self.cut("refuse")
        self._listener.close()

    def _upstream(self) -> socket.socket:
        host, port = str(self.params.get("host") or "localhost"), int(self.params.get("port") or 5432)
        if host.startswith("/"):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(f"{host}/.s.PGSQL.{port}")
            return upstream
        return socket.create_connection((host, port))

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self.mode == "refuse":
                    client.close()
                    continue
                self._open.append(client)
                if self.mode == "blackhole":
                    continue
                upstream = self._upstream()
                self._open.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _close_all(self) -> None:
        for s in self._open:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self._open.clear()
