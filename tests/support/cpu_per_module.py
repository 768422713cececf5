"""Where the test suite's CPU goes, per module: an opt-in pytest plugin and its summary.

    .venv/bin/python -m pytest -n 4 --dist loadscope -p tests.support.cpu_per_module   # writes var/test-cpu/*.tsv
    .venv/bin/python -m tests.support.cpu_per_module                                   # prints the table

Each test's CPU is what its worker process, the worker's children (brokers and processes a test starts, counted
once reaped) and the worker's own embedded PostgreSQL (postmaster and backends) spent between its start and its
end, with its wall time beside. Not counted: servers a child process starts for itself (the e2e test's `make run`
starts its own PostgreSQL) and `make lint`. `make test` is CPU-bound on the 2-core machine (vmstat: ≈ 2 % idle for
its first two thirds), so this, not wall time, says what a change to the suite would save.
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path
from typing import Any

import psutil
import pytest

OUT = Path(__file__).resolve().parents[2] / "var" / "test-cpu"
_postmasters: list[psutil.Process] = []


def pytest_configure(config: pytest.Config) -> None:
    """Remember the PostgreSQL server this worker starts (its backends are the postmaster's children)."""
    import infra.runtime.embedded as embedded

    original = embedded.start_postgres

    def start_postgres(*args: Any, **kwargs: Any) -> embedded.EmbeddedPostgres:
        pg = original(*args, **kwargs)
        if pg._postmaster is not None:  # the running server's process, which this plugin measures
            _postmasters.append(pg._postmaster)
        return pg

    embedded.start_postgres = start_postgres  # a measuring wrapper, same signature
    OUT.mkdir(parents=True, exist_ok=True)


def _seconds(proc: psutil.Process, children: bool) -> float:
    try:
        t = proc.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return t.user + t.system + ((t.children_user + t.children_system) if children else 0.0)


def cpu_seconds() -> float:
    """CPU seconds so far of this process, its children, and its PostgreSQL servers with their backends."""
    me = psutil.Process()
    total = _seconds(me, children=True) + sum(_seconds(c, children=False) for c in me.children(recursive=True))
    for postmaster in _postmasters:
        total += _seconds(postmaster, children=True)
        try:
            backends = postmaster.children()
        except psutil.NoSuchProcess:
            continue
        total += sum(_seconds(b, children=False) for b in backends)
    return total


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    cpu, wall = cpu_seconds(), time.monotonic()
    yield
    with (OUT / f"{os.getpid()}.tsv").open("a") as out:
        out.write(f"{item.nodeid}\t{cpu_seconds() - cpu:.3f}\t{time.monotonic() - wall:.3f}\n")


def main() -> None:
    """Print CPU and wall seconds per module, largest first, from var/test-cpu/*.tsv."""
    cpu: dict[str, float] = defaultdict(float)
    wall: dict[str, float] = defaultdict(float)
    tests: dict[str, int] = defaultdict(int)
    for path in OUT.glob("*.tsv"):
        for line in path.read_text().splitlines():
            nodeid, spent, took = line.split("\t")
            module = nodeid.split("::", 1)[0]
            cpu[module] += float(spent)
            wall[module] += float(took)
            tests[module] += 1
    if not cpu:
        sys.exit(f"nothing in {OUT}: run pytest with -p tests.support.cpu_per_module first")
    print(f"{'CPU s':>8} {'wall s':>8} {'tests':>6}  module")
    for module in sorted(cpu, key=cpu.__getitem__, reverse=True):
        print(f"{cpu[module]:8.1f} {wall[module]:8.1f} {tests[module]:6d}  {module}")
    print(f"{sum(cpu.values()):8.1f} {sum(wall.values()):8.1f} {sum(tests.values()):6d}  all")


if __name__ == "__main__":
    main()
