"""A tiny process supervisor for `dudao run` (DESIGN.md §10).

`Supervisor.add()` starts a child command in its own process group and forwards each of its
output lines to our stdout as `name | line`. Children are meant to run forever, so one that
exits on its own (a crash, a bug, a dependency it could not ride out) is restarted, after a
delay that doubles from 0.5 s up to 30 s while it keeps failing and starts again from 0.5 s
once it has stayed up for a minute; its siblings, the API among them, keep running. Each
change of a child's state is logged once (structlog): `child_exited` with its exit code and
when the next attempt comes, then `child_restarted`.

Only SIGINT or SIGTERM to the supervisor (Ctrl-C on `dudao run`) stops everything:
SIGTERM to each child's process group, SIGKILL to whatever is left after a grace period.
Because children live in their own sessions, a terminal Ctrl-C reaches only the supervisor,
which then shuts them down in order and leaves no stray process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import TextIO

import structlog

from infra.outage import Backoff

log = structlog.get_logger("dudao.supervisor")

STOP_GRACE_S = 5.0
RESTART_FIRST_S = 0.5
RESTART_CAP_S = 30.0
STABLE_AFTER_S = 60.0  # up this long, a child's next failure is treated as a first one
_POLL_S = 0.1


@dataclass
class Child:
    """One supervised command and its current process (replaced on each restart)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(repr=False)
    process: subprocess.Popen[bytes]
    reader: threading.Thread = field(repr=False)
    backoff: Backoff = field(repr=False)
    started_at: float = 0.0
    restart_at: float | None = None  # set while the child is down and waiting for its next attempt
    restarts: int = 0

    @property
    def pgid(self) -> int:
        return self.process.pid  # start_new_session=True makes the child a group leader

    @property
    def waiting(self) -> bool:
        return self.restart_at is not None


class Supervisor:
    """Start children, forward their output, restart the ones that exit, and stop them all together."""

    def __init__(self, out: TextIO | None = None, grace_s: float = STOP_GRACE_S, *,
                 restart_first_s: float = RESTART_FIRST_S, restart_cap_s: float = RESTART_CAP_S,
                 stable_after_s: float = STABLE_AFTER_S) -> None:
        self._out = out if out is not None else sys.stdout
        self._grace_s = grace_s
        self._restart_first_s, self._restart_cap_s = restart_first_s, restart_cap_s
        self._stable_after_s = stable_after_s
        self._children: list[Child] = []
        self._readers: list[threading.Thread] = []
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._signal: int | None = None
        self._restore_signals: Callable[[], None] | None = None

    @property
    def children(self) -> list[Child]:
        return list(self._children)

    def add(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        """Start `argv` now; `env` entries are laid over the supervisor's own environment.

        The first add() installs the SIGINT/SIGTERM handlers, so a signal that arrives before
        run_until_stopped() still stops the children instead of orphaning them.
        """
        if self._restore_signals is None:
            self._restore_signals = self._install_signal_handlers()
        child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        process, reader = self._spawn(name, list(argv), child_env)
        child = Child(name, list(argv), child_env, process, reader,
                      Backoff(self._restart_first_s, self._restart_cap_s), started_at=time.monotonic())
        self._children.append(child)
        return child

    def request_stop(self, signum: int | None = None) -> None:
        """Ask run_until_stopped() to stop all children (safe from signal handlers/threads)."""
        self._signal = signum
        self._stop.set()

    def run_until_stopped(self) -> int:
        """Look after the children until SIGINT/SIGTERM (or request_stop()), then stop them all; returns 0."""
        if self._restore_signals is None:
            self._restore_signals = self._install_signal_handlers()
        try:
            while not self._stop.wait(_POLL_S):
                now = time.monotonic()
                for child in self._children:
                    self._look_after(child, now)
        finally:
            log.info("supervisor_stopping", children=len(self._children), signal=self._signal)
            self.stop_all()
            self._restore_signals()
            self._restore_signals = None
        return 0

    def stop_all(self) -> None:
        """SIGTERM every running child's process group, SIGKILL what remains after the grace period."""
        running = [c for c in self._children if not c.waiting]
        for child in running:
            _signal_group(child.pgid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace_s
        while time.monotonic() < deadline and self._any_group_alive(running):
            time.sleep(_POLL_S / 2)
        for child in running:
            _signal_group(child.pgid, signal.SIGKILL)
            child.process.wait()
        for reader in self._readers:
            reader.join(timeout=1.0)

    # ------------------------------------------------------------------ internals

    def _look_after(self, child: Child, now: float) -> None:
        """Notice an exit and schedule the restart, or restart a child whose delay has passed."""
        if child.restart_at is not None:
            if now >= child.restart_at:
                self._restart(child)
            return
        code = child.process.poll()
        if code is None:
            return
        _signal_group(child.pgid, signal.SIGKILL)  # anything the dead leader left behind in its group
        if now - child.started_at >= self._stable_after_s:
            child.backoff.reset()
        delay = child.backoff.next()
        child.restart_at = now + delay
        log.warning("child_exited", child=child.name, exit_code=code, restart_in_s=delay,
                    restarts_so_far=child.restarts)

    def _restart(self, child: Child) -> None:
        child.process, child.reader = self._spawn(child.name, child.argv, child.env)
        child.started_at, child.restart_at = time.monotonic(), None
        child.restarts += 1
        log.info("child_restarted", child=child.name, pid=child.process.pid, restarts=child.restarts)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], threading.Thread]:
        process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        reader = threading.Thread(target=self._forward, args=(name, process), name=f"supervisor-{name}", daemon=True)
        self._readers = [r for r in self._readers if r.is_alive()] + [reader]
        reader.start()
        return process, reader

    def _any_group_alive(self, children: list[Child]) -> bool:
        for child in children:
            child.process.poll()  # reap the leader, else its zombie keeps the group "alive"
        return any(_group_alive(child.pgid) for child in children)

    def _install_signal_handlers(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None  # only the main thread may set handlers; use request_stop()

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signum)

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def _forward(self, name: str, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self._write(name, raw.decode(errors="replace").rstrip("\r\n"))
        process.stdout.close()

    def _write(self, name: str, line: str) -> None:
        with self._write_lock:
            self._out.write(f"{name:>12} | {line}\n")
            self._out.flush()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # group already gone


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
