"""The process supervisor of `dudao run`: a child that exits is restarted with backoff, its siblings
keep running, and only Ctrl-C (SIGINT) or SIGTERM to the supervisor stops everything."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

SUPERVISOR = textwrap.dedent("""
    import sys
    from infra.logging import configure_logging
    from infra.runtime.supervisor import Supervisor
    configure_logging("json")
    sup = Supervisor(restart_first_s=0.2, restart_cap_s=1.6, stable_after_s={stable_after_s})
    for name, code in {children!r}:
        sup.add(name, [sys.executable, "-c", code])
    sys.exit(sup.run_until_stopped())
""")
# Each child prints its pid first, so the test can follow every incarnation.
SLEEPER = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(600)"
CRASHER = "import os; print('pid', os.getpid(), flush=True); raise SystemExit(3)"
# Exits on its first run only (a marker file remembers), then sleeps like a healthy process.
FAILS_ONCE = ("import os, pathlib, time; print('pid', os.getpid(), flush=True); m = pathlib.Path({marker!r})\n"
              "if not m.exists(): m.touch(); raise SystemExit(5)\ntime.sleep(600)")
LASTS_A_WHILE = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(1.2); raise SystemExit(4)"


class Supervised:
    """A supervisor subprocess; its children's pids read from the forwarded `name | pid N` lines."""

    def __init__(self, tmp_path: Path, children: list[tuple[str, str]], stable_after_s: float = 60.0) -> None:
        self.log_path = tmp_path / "supervisor.log"
        code = SUPERVISOR.format(children=children, stable_after_s=stable_after_s)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE,
                                         stderr=log, text=True)
        self.pids: dict[str, list[int]] = {name: [] for name, _ in children}

    def wait_for_starts(self, name: str, count: int, deadline_s: float = 30.0) -> None:
        """Read forwarded lines until `name` has started `count` times (or fail at the deadline)."""
        assert self.proc.stdout is not None
        end = time.monotonic() + deadline_s
        while len(self.pids[name]) < count:
            assert time.monotonic() < end, f"{name} started {len(self.pids[name])} times, wanted {count}"
            line = self.proc.stdout.readline()
            assert line, f"supervisor output ended; log:\n{self.log_path.read_text()}"
            child, _, text = line.partition(" | ")
            if text.startswith("pid "):
                self.pids[child.strip()].append(int(text.split()[1]))

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=30)
        return self.proc.returncode

    def events(self, event: str, child: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]
        return [e for e in lines if e.get("event") == event and e.get("child") == child]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until_gone(pids: list[int], deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < end, f"still alive: {[p for p in pids if alive(p)]}"
        time.sleep(0.05)


def test_a_child_that_exits_is_restarted_with_growing_delays_while_its_sibling_keeps_running(tmp_path: Path) -> None:
    """A crashing child comes back again and again, 0.2 → 0.4 → 0.8 → 1.6 → 1.6 s apart, each exit logged once with its code; the sleeper is never touched."""
    sup = Supervised(tmp_path, [("sleeper", SLEEPER), ("crasher", CRASHER)])
    try:
        sup.wait_for_starts("sleeper", 1)
        sup.wait_for_starts("crasher", 6)
        assert sup.pids["sleeper"] and alive(sup.pids["sleeper"][0])
        assert sup.interrupt() == 0
    finally:
        sup.kill()
    exits = sup.events("child_exited", "crasher")
    assert [e["restart_in_s"] for e in exits[:5]] == [0.2, 0.4, 0.8, 1.6, 1.6]
    assert {e["exit_code"] for e in exits} == {3}
    assert len(sup.events("child_restarted", "crasher")) >= 5
    assert sup.pids["sleeper"] == [sup.pids["sleeper"][0]]  # started once, never restarted
    assert sup.events("child_exited", "sleeper") == []


def test_a_child_that_stayed_up_long_enough_is_restarted_after_the_first_delay_again(tmp_path: Path) -> None:
    """A child that fails only after being up past the stable time is not punished with a growing delay."""
    sup = Supervised(tmp_path, [("steady", LASTS_A_WHILE)], stable_after_s=1.0)
    try:
        sup.wait_for_starts("steady", 4)
        assert sup.interrupt() == 0
    finally:
        sup.kill()
    assert [e["restart_in_s"] for e in sup.events("child_exited", "steady")[:3]] == [0.2, 0.2, 0.2]


def test_ctrl_c_stops_every_child_including_a_restarted_one_and_exits_zero(tmp_path: Path) -> None:
    """SIGINT to the supervisor ends the sleeper and the restarted incarnation of a child that failed once: no process is left."""
    flaky = FAILS_ONCE.format(marker=str(tmp_path / "failed-once"))
    sup = Supervised(tmp_path, [("sleeper", SLEEPER), ("flaky", flaky)])
    try:
        sup.wait_for_starts("sleeper", 1)
        sup.wait_for_starts("flaky", 2)
        assert alive(sup.pids["flaky"][1]) and alive(sup.pids["sleeper"][0])
        assert sup.interrupt() == 0
    finally:
        sup.kill()
    assert [e["exit_code"] for e in sup.events("child_exited", "flaky")] == [5]
    wait_until_gone(sup.pids["sleeper"] + sup.pids["flaky"])
