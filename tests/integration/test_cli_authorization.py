"""`dudao command` is authorized exactly as HTTP is: the token's role, campaign, references and expiry.

Before, the CLI handed the service only the token's actor, so a token bound to campaign A could act
on campaign B from the command line, and a read-only role reached the rules. Now it hands over the
token's whole grant and the service checks it (`infra.commands.authorization`) for every edge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from typer.testing import CliRunner, Result

from domain import problem as pr
from infra.bootstrap import System, bootstrap
from infra.cli.main import app
from infra.commands.grants import create_token, token_digest
from tests.support.problem_world import World, build_world

pytestmark = pytest.mark.integration


@dataclass
class Two:
    system: System
    a: World
    b: World

    def token(self, role: str, campaign_id: UUID | None = None, person_id: UUID | None = None) -> str:
        with psycopg.connect(self.system.database_url, autocommit=True) as conn:
            return create_token(conn, role, person_id=person_id, campaign_id=campaign_id)

    def head(self) -> int:
        return self.a.log_head()


@pytest.fixture
def two(database_url: str, clock: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Two]:
    system = bootstrap(database_url, clock=clock)
    a, b = build_world(system), build_world(system)
    for w in (a, b):
        w.send("supervisor", pr.ReportProblem, problem_id=w["p"], campaign_id=w.campaign_id, category="clutter",
               place_id=w["s1"], description="占道经营", source="hotline")
    monkeypatch.setenv("DUDAO_DATABASE_URL", database_url)
    yield Two(system, a, b)
    system.close()


def run(name: str, body: dict[str, Any], token: str) -> Result:
    return CliRunner().invoke(app, ["command", name, "--body", json.dumps({"command_id": str(uuid4()), **body}),
                                    "--token", token])


def test_a_token_bound_to_campaign_a_cannot_act_on_campaign_b_from_the_cli(two: Two) -> None:
    """Parking B's problem with an A-bound HQ token: exit 1, 403 campaign_not_allowed, nothing written."""
    token, head = two.token("hq_office", two.a.campaign_id), two.head()
    out = run("park_problem", {"problem_id": str(two.b["p"]), "reason": "待协调"}, token)
    assert out.exit_code == 1 and "campaign_not_allowed" in out.output, out.output
    assert two.head() == head


def test_the_cli_refuses_a_reference_into_another_campaign(two: Two) -> None:
    """Handing A's problem to B's unit from the CLI: exit 1, 422 cross_campaign_reference, nothing written."""
    token, head = two.token("admin"), two.head()
    out = run("assign_problem", {"problem_id": str(two.a["p"]), "unit_id": str(two.b["unit_b"]), "reason": "交办"},
              token)
    assert out.exit_code == 1 and "cross_campaign_reference" in out.output, out.output
    assert two.head() == head


def test_a_read_only_role_writes_nothing_from_the_cli(two: Two) -> None:
    """An auditor's token issuing a command: exit 1, 403 read_only_role."""
    out = run("park_problem", {"problem_id": str(two.a["p"]), "reason": "待协调"}, two.token("auditor"))
    assert out.exit_code == 1 and "read_only_role" in out.output, out.output


def test_an_expired_token_is_refused_at_once(two: Two) -> None:
    """A token past its expiry: exit 2 naming token_expired, before the body is even read."""
    token = two.token("hq_office", two.a.campaign_id)
    with psycopg.connect(two.system.database_url, autocommit=True) as conn:
        conn.execute("UPDATE dudao_tokens SET expires_at = clock_timestamp() - interval '1 second'"
                     " WHERE token_sha256 = %s", (token_digest(token),))
    out = run("park_problem", {"problem_id": str(two.a["p"]), "reason": "待协调"}, token)
    assert out.exit_code == 2 and "token_expired" in out.output, out.output


def test_inside_its_campaign_the_bound_token_acts_from_the_cli(two: Two) -> None:
    """The same A-bound token withdraws A's problem (作废): exit 0."""
    out = run("withdraw_problem", {"problem_id": str(two.a["p"]), "reason": "重复上报"},
              two.token("hq_office", two.a.campaign_id))
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["aggregate_id"] == str(two.a["p"])
