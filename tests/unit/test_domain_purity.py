"""The domain stays pure: no I/O modules, no wall clock (import-linter checks the third-party side)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
IO_MODULES = {"os", "io", "socket", "subprocess", "time", "pathlib", "shutil", "threading", "asyncio", "random", "urllib", "http", "logging"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic"}


def domain_modules() -> list[Path]:
    return sorted(DOMAIN.rglob("*.py"))


@pytest.mark.parametrize("path", domain_modules(), ids=lambda p: p.name)
def test_domain_module_imports_no_io_module(path: Path) -> None:
    """No domain module imports a standard-library module that does I/O, reads time or randomness."""
    tree = ast.parse(path.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    assert not imported & IO_MODULES


@pytest.mark.parametrize("path", domain_modules(), ids=lambda p: p.name)
def test_domain_module_never_reads_the_clock(path: Path) -> None:
    """No domain module calls datetime.now()/date.today()/time.time(): time is injected."""
    tree = ast.parse(path.read_text())
    calls = [n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert not set(calls) & CLOCK_CALLS
