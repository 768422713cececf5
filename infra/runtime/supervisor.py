"""A tiny process supervisor for `dudao run` (DESIGN.md §10).

`Supervisor.add()` starts a child command in its own process group and forwards each of
its output lines to our stdout as `name | line`. `run_until_stopped()` blocks until SIGINT
or SIGTERM arrives or any child exits (children are expected to run forever), then stops
every child: SIGTERM to each child's process group, SIGKILL to whatever is left after a
grace period. Because children live in their own sessions, a terminal Ctrl-C reaches only
the supervisor, which then shuts them down in order and leaves no stray process.
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

STOP_GRACE_S = 5.0
_POLL_S = 0.1


@dataclass
class Child:
    """One supervised command."""

    name: str
    process: subprocess.Popen[bytes]
    reader: threading.Thread = field(repr=False)

    @property
    def pgid(self) -> int:
        return self.process.pid  # start_new_session=True makes the child a group leader


class Supervisor:
    """Start children, forward their output, and stop them all together."""

    def __init__(self, out: TextIO | None = None, grace_s: float = STOP_GRACE_S) -> None:
        self._out = out if out is not None else sys.stdout
        self._grace_s = grace_s
        self._children: list[Child] = []
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
        process = subprocess.Popen(list(argv), env=child_env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        reader = threading.Thread(target=self._forward, args=(name, process),
                                  name=f"supervisor-{name}", daemon=True)
        child = Child(name, process, reader)
        self._children.append(child)
        reader.start()
        return child

    def request_stop(self, signum: int | None = None) -> None:
        """Ask run_until_stopped() to stop all children (safe from signal handlers/threads)."""
        self._signal = signum
        self._stop.set()

    def run_until_stopped(self) -> int:
        """Block until a signal or a child exit, stop everything, return an exit code.

        0 after SIGINT/SIGTERM (or request_stop()); otherwise the exit status of the first
        child that exited on its own (1 if that status was 0, since children should not exit).
        """
        if self._restore_signals is None:
            self._restore_signals = self._install_signal_handlers()
        try:
            exited = self._wait_for_stop_or_exit()
        finally:
            self._log("supervisor", f"stopping {len(self._children)} process(es)")
            self.stop_all()
            self._restore_signals()
            self._restore_signals = None
        if exited is None:
            return 0
        code = exited.process.returncode
        self._log("supervisor", f"{exited.name} exited unexpectedly with status {code}")
        return code if code not in (0, None) else 1

    def stop_all(self) -> None:
        """SIGTERM every child's process group, SIGKILL what remains after the grace period."""
        for child in self._children:
            _signal_group(child.pgid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace_s
        while time.monotonic() < deadline and self._any_group_alive():
            time.sleep(_POLL_S / 2)
        for child in self._children:
            _signal_group(child.pgid, signal.SIGKILL)
            child.process.wait()
        for child in self._children:
            child.reader.join(timeout=1.0)

    # ------------------------------------------------------------------ internals

    def _wait_for_stop_or_exit(self) -> Child | None:
        while not self._stop.wait(_POLL_S):
            for child in self._children:
                if child.process.poll() is not None:
                    return child
        return None

    def _any_group_alive(self) -> bool:
        for child in self._children:
            child.process.poll()  # reap the leader, else its zombie keeps the group "alive"
        return any(_group_alive(child.pgid) for child in self._children)

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
            self._log(name, raw.decode(errors="replace").rstrip("\r\n"))
        process.stdout.close()

    def _log(self, name: str, line: str) -> None:
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
