"""The CLI drives the supervision loop: a command issued as a token's actor, the ledger exported, a timeline shown."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from typer.testing import CliRunner

from infra.http.auth import create_token
from infra.bootstrap import bootstrap
from infra.cli.main import app
from tests.support.problem_world import build_world, photo

pytestmark = pytest.mark.integration


def test_cli_reports_a_problem_exports_the_ledger_and_prints_its_timeline(blank_database_url: str, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """On a brand-new database, `dudao command report_problem` writes as the token's person; `dudao ledger --csv`
    and `dudao problem` show it."""
    database_url = blank_database_url
    system = bootstrap(database_url)
    world = build_world(system)
    monkeypatch.setenv("DUDAO_DATABASE_URL", database_url)
    supervisor = world.actors["supervisor"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = create_token(conn, role=supervisor.role, person_id=supervisor.person_id, name=supervisor.name)
    pid = uuid4()
    world.upload((photo("p"),))
    body = {"command_id": str(uuid4()), "problem_id": str(pid), "campaign_id": str(world.campaign_id),
            "category": "sanitation", "place_id": str(world["s1"]), "description": "垃圾堆积",
            "evidence": [photo("p").model_dump(mode="json")], "source": "hotline"}
    runner = CliRunner()
    out = runner.invoke(app, ["command", "report_problem", "--body", json.dumps(body), "--token", token])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["aggregate_id"] == str(pid)
    (stored,) = system.app.history(pid)
    assert stored.event.meta.actor.person_id == supervisor.person_id
    system.projector.catch_up()
    target = tmp_path / "ledger.csv"
    out = runner.invoke(app, ["ledger", str(world.campaign_id), "--csv", str(target)])
    assert out.exit_code == 0, out.output
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 1
    out = runner.invoke(app, ["problem", str(pid)])
    assert out.exit_code == 0 and "supervisor" in out.stdout
    bad = runner.invoke(app, ["command", "report_problem", "--body", json.dumps(body), "--token", "nope"])
    assert bad.exit_code == 2
    invalid = runner.invoke(app, ["command", "report_problem", "--body", json.dumps({**body, "source": "?"}), "--token", token])
    assert invalid.exit_code == 2 and "invalid_input" in invalid.output
    system.close()


def test_cli_refuses_what_the_api_refuses_with_the_same_codes(database_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`dudao command` answers a NUL, a year-9999 time, a "3" for a count and a photo never uploaded as HTTP does,
    and writes nothing."""
    system = bootstrap(database_url)
    world = build_world(system)
    monkeypatch.setenv("DUDAO_DATABASE_URL", database_url)
    supervisor = world.actors["supervisor"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        token = create_token(conn, role=supervisor.role, person_id=supervisor.person_id, name=supervisor.name)
    body = {"command_id": str(uuid4()), "problem_id": str(uuid4()), "campaign_id": str(world.campaign_id),
            "category": "sanitation", "place_id": str(world["s1"]), "description": "垃圾堆积", "source": "hotline"}
    head = world.log_head()
    runner = CliRunner()
    for change, exit_code, code in (({"command_id": "c\u0000"}, 2, "control_character"),
                                    ({"description": "垃圾\u0000堆积"}, 2, "control_character"),
                                    ({"occurred_at": "9999-12-31T23:59:59-14:00"}, 2, "time_out_of_range"),
                                    ({"occurred_at": 0.5}, 2, "time_format"),
                                    ({"evidence": [photo("never").model_dump(mode="json")]}, 1, "evidence_not_found")):
        out = runner.invoke(app, ["command", "report_problem", "--body", json.dumps({**body, **change}),
                                  "--token", token])
        refusal = next(json.loads(line) for line in out.stderr.splitlines() if line.startswith('{"code"'))
        assert (out.exit_code, refusal["code"]) == (exit_code, code), (change, out.output)
    assert world.log_head() == head
    system.close()
