"""`dudao demo` loads its 2021–22 story only into a drill deployment (演练模式) unless told `--wall-clock`: on the
wall clock the live escalator would judge it against today and take the whole ladder for every problem at once."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from infra.bootstrap import bootstrap
from infra.cli.main import app

pytestmark = pytest.mark.integration


def test_the_demo_refuses_a_deployment_on_the_wall_clock_and_writes_nothing(
        blank_database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a brand-new deployment started without a drill clock, `dudao demo` exits 2 saying why (zh-CN and en) and
    what to do, and the event store stays empty."""
    monkeypatch.setenv("DUDAO_DATABASE_URL", blank_database_url)
    monkeypatch.delenv("DUDAO_DRILL_CLOCK", raising=False)
    out = CliRunner().invoke(app, ["demo", "--json"])
    assert out.exit_code == 2, out.output
    assert "此部署不是演练模式" in out.output and "not a drill" in out.output and "--demo-drill" in out.output
    system = bootstrap(blank_database_url)
    try:
        assert (system.app.recorder.max_notification_id() or 0) == 0
    finally:
        system.close()
