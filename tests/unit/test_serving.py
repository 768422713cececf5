"""API workers (`dudao serve --workers N`) each listen on a socket of their own, and the kernel spreads connections.

uvicorn's own `--workers` shares one socket, and a burst of keep-alive connections all went to whichever worker woke
first (`infra.runtime.serving`); these tests pin down what the per-worker sockets give instead.
"""

from __future__ import annotations

import selectors
import socket

from infra.runtime.serving import reuse_port_socket


def test_several_sockets_bind_the_same_port() -> None:
    """A second worker's socket binds the port the first one holds (a plain socket would get EADDRINUSE)."""
    first = reuse_port_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = reuse_port_socket("127.0.0.1", port)
    try:
        assert second.getsockname()[1] == port
    finally:
        first.close()
        second.close()


def test_a_burst_of_connections_is_spread_over_the_workers_sockets() -> None:
    """64 clients connecting at once land on both sockets, not all on one (the chance of that is 2 in 2**64)."""
    sockets = [reuse_port_socket("127.0.0.1", 0)]
    sockets.append(reuse_port_socket("127.0.0.1", sockets[0].getsockname()[1]))
    clients = [socket.create_connection(sockets[0].getsockname(), timeout=5) for _ in range(64)]
    accepted = [0, 0]
    try:
        with selectors.DefaultSelector() as selector:
            for i, s in enumerate(sockets):
                s.setblocking(False)
                selector.register(s, selectors.EVENT_READ, i)
            while sum(accepted) < len(clients):
                ready = selector.select(timeout=5)
                assert ready, f"only {sum(accepted)} of {len(clients)} connections arrived within 5 s"
                for key, _ in ready:
                    conn, _ = key.fileobj.accept()  # type: ignore[union-attr]  # the registered listening sockets
                    conn.close()
                    accepted[key.data] += 1
    finally:
        for c in clients:
            c.close()
        for s in sockets:
            s.close()
    assert all(accepted), f"connections per socket: {accepted}"


def test_connections_accepted_by_asyncio_on_a_workers_socket_send_without_nagle_delay() -> None:
    """asyncio turns TCP_NODELAY on for an accepted connection only when the listening socket says it is TCP; with
    the protocol left 0 it did not, and each response written in two sends waited for the client's delayed ACK
    (~40 ms): one worker behind such a socket served 146 commands/s against uvicorn's own 336."""
    import asyncio

    async def accept_one() -> int:
        sock = reuse_port_socket("127.0.0.1", 0)
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connection(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connection, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname())
            try:
                return await asyncio.wait_for(accepted, 5)
            finally:
                writer.close()

    assert asyncio.run(accept_one()) != 0
