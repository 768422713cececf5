"""What `make run` prints on start: where to look, the dashboard among it (no process is started here)."""

from __future__ import annotations

import pytest

from infra.runtime import run
from infra.settings import Settings

pytestmark = pytest.mark.unit


class NoSupervisor:
    """Stands in for the supervisor: records the workers instead of starting them."""

    def __init__(self) -> None:
        self.added: list[str] = []

    def add(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.added.append(name)

    def run_until_stopped(self) -> int:
        return 0


def test_make_run_prints_the_dashboard_url_beside_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """The banner names the dashboard at /ui/ on the API's own host and port."""
    printed: list[str] = []
    monkeypatch.setattr(run, "Supervisor", NoSupervisor)
    settings = Settings(http_host="127.0.0.1", http_port=8123)
    assert run.supervise(settings, "postgresql://x", "127.0.0.1:9092", "tok", printed.append) == 0
    lines = "\n".join(printed).splitlines()
    assert any(line.split()[:2] == ["dashboard", "http://127.0.0.1:8123/ui/"] for line in lines), lines
