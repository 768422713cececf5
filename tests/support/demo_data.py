"""The 高安 demo loaded once into a brand-new database, as `dudao demo` loads it, for the tests that read it.

Loading takes the better part of a minute (thousands of commands through the real command path), so a test
session loads it once (the `loaded_demo` fixture of tests/conftest.py) and each module that reads it gets a copy
of its own (`copy_of`: CREATE DATABASE … TEMPLATE, a second or two): tests/integration/test_demo.py checks what
the demo holds, test_demo_leadership.py the leaders' duties, tests/browser shows it in the dashboard. Under
pytest-xdist those modules go to one worker together (tests/conftest.py), so it is loaded once for all three."""

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


def copy_of(databases: Databases, demo: Demo, stem: str = "demo_copy") -> Demo:
    """The same demo in a database of its own, so a module may write without touching another's."""
    return Demo(databases.copy(demo.database_url, stem), demo.summary, demo.head, demo.var_dir)
