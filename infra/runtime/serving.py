"""`dudao serve --workers N`: the API in N processes, each accepting connections on a socket of its own.

Why not uvicorn's own `--workers`: it binds one listening socket and shares it between its workers, and whichever
worker wakes first accepts every connection waiting (asyncio accepts up to its backlog per wake-up). Clients that
connect together and keep their connections alive (a mobile app's keep-alive connection, a proxy's pool, the
bench's 8 clients) then all land on one worker and stay there: measured under `tests.bench`'s HTTP load with 2
workers, one at 34% CPU and the other at 0.8%, and 2 workers served fewer commands/s than 1. Here each worker binds
its own socket to the same address with SO_REUSEPORT, and the kernel spreads new connections across the workers'
sockets by their address hash, whichever is busy.

The parent only supervises: a worker that exits is started again after a pause that doubles up to a cap, and
SIGTERM or SIGINT stops every worker (each finishes the requests it is answering) and then the parent.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import threading
from multiprocessing.process import BaseProcess
from types import FrameType

import structlog
import uvicorn

log = structlog.get_logger("dudao.serve")

RESTART_FIRST_S = 0.5
RESTART_CAP_S = 10.0
STOP_WAIT_S = 30.0  # a worker still answering after this long is killed


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port) that other processes may bind too (SO_REUSEPORT: the kernel balances)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio sets TCP_NODELAY on an accepted connection only when its socket's proto
    # says TCP, and without it every response written in two sends waited for the client's delayed ACK (~40 ms).
    # Measured: one worker behind this socket 146 commands/s, 64 % of the machine idle; uvicorn's own socket 336/s.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_worker(factory: str, host: str, port: int) -> None:
    """One worker: its own socket, the app from `factory` ("module:function", called in this process)."""
    sock = reuse_port_socket(host, port)
    config = uvicorn.Config(factory, factory=True, host=host, port=port, access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(factory: str, host: str, port: int, workers: int) -> int:
    """Run `workers` worker processes until SIGTERM/SIGINT; restart any that exits meanwhile. Returns the exit code."""
    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start() -> BaseProcess:
        process = ctx.Process(target=run_worker, args=(factory, host, port), name="dudao-api", daemon=False)
        process.start()
        return process

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        running = [start() for _ in range(workers)]
        pauses = [RESTART_FIRST_S] * workers
        log.info("api_workers_started", workers=workers, host=host, port=port, pids=[p.pid for p in running])
        while not stop.wait(0.5):
            for i, process in enumerate(running):
                if process.is_alive():
                    continue
                log.warning("api_worker_exited", pid=process.pid, exitcode=process.exitcode, restart_in_s=pauses[i])
                if stop.wait(pauses[i]):
                    break
                pauses[i] = min(pauses[i] * 2, RESTART_CAP_S)
                running[i] = start()
        for process in running:
            if process.is_alive() and process.pid is not None:
                process.terminate()  # SIGTERM: uvicorn stops accepting and finishes what it is answering
        for process in running:
            process.join(STOP_WAIT_S)
            if process.is_alive():
                process.kill()
                process.join()
        return 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
