"""The 高安 demo loaded once into a brand-new database, as `dudao demo` loads it, for the tests that read it.

Loading takes the better part of a minute (thousands of commands through the real command path), so a test
module loads it once in a module-scoped fixture and its tests only read it: tests/integration/test_demo.py
checks what the demo holds, tests/browser shows it in the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.bootstrap import bootstrap
from infra.cli.system import load_demo
from infra.settings import Settings
from tests.support.databases import Databases


@dataclass(frozen=True)
class Demo:
    database_url: str
    summary: dict[str, Any]
    head: int
    var_dir: Path


def load_demo_once(databases: Databases, var_dir: Path) -> Demo:
    """The demo loaded, as `dudao demo` loads it, into a brand-new database (no tables before bootstrap)."""
    database_url = databases.blank("demo")
    system = bootstrap(database_url)
    try:
        summary = load_demo(system, Settings(database_url=database_url, var_dir=var_dir, audit_key="d" * 64))
        head = system.app.recorder.max_notification_id() or 0
    finally:
        system.close()
    return Demo(database_url, summary, head, var_dir)
