"""Scopes (范围, DESIGN §9) over HTTP: a unit acts on and sees its own work, a leader their linked places, a supervisor
their group's visits (writes and reads); a token can be narrowed to units or places, and it expires.

One campaign: 城管局 (unit_a) leads grid 1 (sites s1, s2), 住建局 (unit_b) leads grid 2 (site s3); a problem at
s1 is handed to unit_a, one at s3 to unit_b; leader "li" is linked (挂钩) to grid 1, "li_unit" to unit_b; "supervisor" and
"supervisor2" are the 检查督导组, "supervisor_in_a" sits in unit_a.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from domain import problem as pr
from domain.liaison import DesignateLeader, LinkLiaison
from domain.problem.assignment_notice import assignment_notice_id
from domain.structure.person import JoinUnit
from infra.bootstrap import bootstrap
from infra.cli.main import app as cli
from infra.commands.grants import create_token, ensure_tokens_table, token_digest
from infra.http import create_app
from tests.support.problem_world import ADMIN, World, build_world

pytestmark = pytest.mark.integration


@dataclass
class Scoped:
    w: World
    client: TestClient

    def token(self, who: str, **scope: Any) -> dict[str, str]:
        actor = self.w.actors[who]
        with psycopg.connect(self.w.system.database_url, autocommit=True) as conn:
            token = create_token(conn, actor.role, person_id=actor.person_id, name=actor.name, **scope)
        return {"Authorization": f"Bearer {token}"}

    def post(self, headers: dict[str, str], name: str, **body: Any) -> Any:
        payload = {"command_id": str(uuid4()), **{k: str(v) if isinstance(v, UUID) else v for k, v in body.items()}}
        return self.client.post(f"/commands/{name}", json=payload, headers=headers)

    def report(self, headers: dict[str, str], place: str) -> Any:
        return self.post(headers, "report_problem", problem_id=uuid4(), campaign_id=self.w.campaign_id,
                         category="clutter", place_id=self.w[place], description="乱堆乱放", source="leader")

    def get(self, headers: dict[str, str], path: str, **params: Any) -> Any:
        return self.client.get(path, headers=headers, params=params)


@pytest.fixture
def s(database_url: str, clock: Any) -> Iterator[Scoped]:
    system = bootstrap(database_url, clock=clock)
    w = build_world(system)
    w.person("supervisor2", "supervisor", "inspectors", ("supervisor",))
    w.person("li", "leader", "inspectors", ("leader",))
    w.person("lone_leader", "leader", "inspectors", ("leader",))
    w.send("hq", DesignateLeader, person_id=w["li"], campaign_id=w.campaign_id, body="government", rank="副市长")
    w.send("hq", LinkLiaison, link_id=uuid4(), person_id=w["li"], campaign_id=w.campaign_id, target_kind="place",
           target_id=w["grid1"], valid_from=system.clock() - timedelta(days=30), reason="分工")
    w.person("li_unit", "leader", "inspectors", ("leader",))
    w.send("hq", DesignateLeader, person_id=w["li_unit"], campaign_id=w.campaign_id, body="cppcc", rank="副主席")
    w.send("hq", LinkLiaison, link_id=uuid4(), person_id=w["li_unit"], campaign_id=w.campaign_id, target_kind="unit",
           target_id=w["unit_b"], valid_from=system.clock() - timedelta(days=30), reason="分工")
    for problem, place in (("p_a", "s1"), ("p_b", "s3")):
        w.send("supervisor", pr.ReportProblem, problem_id=w[problem], campaign_id=w.campaign_id, category="clutter",
               place_id=w[place], description="占道经营", source="hotline")
        w.send("hq", pr.AssignProblem, problem_id=w[problem])
    w.catch_up()
    with TestClient(create_app(system), raise_server_exceptions=False) as client:
        yield Scoped(w, client)
    system.close()


def code(response: Any) -> tuple[int, str | None]:
    return response.status_code, response.json().get("code") if response.status_code >= 400 else None


# --- writes -----------------------------------------------------------------------------------------------


def test_a_unit_officer_acts_only_on_problems_handed_to_their_unit(s: Scoped) -> None:
    """officer_a may 签收 unit_a's problem (201) but not unit_b's (403 not_assigned_unit)."""
    officer = s.token("officer_a")
    assert code(s.post(officer, "acknowledge_problem", problem_id=s.w["p_b"])) == (403, "not_assigned_unit")
    assert code(s.post(officer, "acknowledge_problem", problem_id=s.w["p_a"])) == (201, None)


def test_a_token_narrowed_to_one_unit_cannot_act_for_the_persons_other_unit(s: Scoped) -> None:
    """A person in both units, with a token narrowed to unit_a, cannot 签收 unit_b's problem; the unscoped token can."""
    s.w.send(ADMIN, JoinUnit, person_id=s.w["officer_a"], unit_id=s.w["unit_b"], roles=("unit_officer",))
    narrowed = s.token("officer_a", unit_ids=[s.w["unit_a"]])
    assert code(s.post(narrowed, "acknowledge_problem", problem_id=s.w["p_b"])) == (403, "not_assigned_unit")
    assert code(s.post(narrowed, "acknowledge_problem", problem_id=s.w["p_a"])) == (201, None)
    assert code(s.post(s.token("officer_a"), "acknowledge_problem", problem_id=s.w["p_b"])) == (201, None)


def test_a_leader_acts_only_at_their_linked_places_and_inside_them(s: Scoped) -> None:
    """li, linked to grid 1, reports at s1 inside it (201) but not at s3 in grid 2 (403 out_of_scope)."""
    li = s.token("li")
    assert code(s.report(li, "s1")) == (201, None)
    assert code(s.report(li, "s3")) == (403, "out_of_scope")


def test_a_leader_linked_to_a_unit_acts_at_the_places_that_unit_leads(s: Scoped) -> None:
    """li_unit, linked to unit_b (which leads grid 2), reports at s3 inside grid 2 (201) but not at s1 (403)."""
    leader = s.token("li_unit")
    assert code(s.report(leader, "s3")) == (201, None)
    assert code(s.report(leader, "s1")) == (403, "out_of_scope")


def test_a_leader_with_no_link_acts_at_no_place(s: Scoped) -> None:
    """A leader linked to nothing (and a token naming no places) may report nowhere: 403 out_of_scope."""
    assert code(s.report(s.token("lone_leader"), "s1")) == (403, "out_of_scope")


def test_a_supervisor_adds_to_or_closes_only_their_groups_visits(s: Scoped) -> None:
    """A visit opened by the 检查督导组 can be closed by another of the group (201), not by unit_a's supervisor (403)."""
    visit = uuid4()
    body = {"occurred_at": (s.w.system.clock() - timedelta(hours=1)).isoformat(), "visit_id": visit,
            "campaign_id": s.w.campaign_id, "place_id": s.w["grid1"], "participants": [str(s.w["supervisor"])]}
    assert code(s.post(s.token("supervisor"), "open_visit", **body)) == (201, None)
    assert code(s.post(s.token("supervisor_in_a"), "close_visit", visit_id=visit)) == (403, "out_of_scope")
    assert code(s.post(s.token("supervisor2"), "close_visit", visit_id=visit)) == (201, None)


def test_a_token_narrowed_to_places_acts_only_there(s: Scoped) -> None:
    """A supervisor's token narrowed to grid 2 reports at s3 (201) but not at s1 (403 out_of_scope)."""
    narrowed = s.token("supervisor", place_ids=[s.w["grid2"]])
    assert code(s.report(narrowed, "s3")) == (201, None)
    assert code(s.report(narrowed, "s1")) == (403, "out_of_scope")


# --- reads ------------------------------------------------------------------------------------------------


def test_a_unit_officer_sees_only_their_units_problems(s: Scoped) -> None:
    """officer_a: unit_b's problem is 403 out_of_scope; the ledger and its CSV list unit_a's problem alone."""
    officer, campaign = s.token("officer_a"), s.w.campaign_id
    assert code(s.get(officer, f"/problems/{s.w['p_b']}")) == (403, "out_of_scope")
    assert code(s.get(officer, f"/problems/{s.w['p_a']}")) == (200, None)
    rows = s.get(officer, f"/campaigns/{campaign}/ledger").json()["rows"]
    assert [r["problem_id"] for r in rows] == [str(s.w["p_a"])]
    exported = s.get(officer, f"/campaigns/{campaign}/ledger.csv").content.decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(exported)))) == 2  # the header and unit_a's problem
    assert len(s.get(s.token("hq"), f"/campaigns/{campaign}/ledger").json()["rows"]) == 2


def test_a_unit_officer_sees_only_the_notices_addressed_to_their_unit(s: Scoped) -> None:
    """officer_a lists unit_a's 交办单 only; unit_b's is 403 out_of_scope by id."""
    officer, campaign = s.token("officer_a"), s.w.campaign_id
    mine, theirs = (assignment_notice_id(s.w[p], s.w[u], 0) for p, u in (("p_a", "unit_a"), ("p_b", "unit_b")))
    rows = s.get(officer, f"/campaigns/{campaign}/notices").json()["rows"]
    assert [r["notice_id"] for r in rows] == [str(mine)]
    assert code(s.get(officer, f"/notices/{theirs}")) == (403, "out_of_scope")
    assert code(s.get(officer, f"/notices/{mine}")) == (200, None)


def test_a_supervisor_sees_only_their_groups_visits(s: Scoped) -> None:
    """A visit of the 检查督导组: another of the group reads it (200, and in the list); unit_a's supervisor gets 403
    out_of_scope by id and no row in the list."""
    visit = uuid4()
    body = {"occurred_at": (s.w.system.clock() - timedelta(hours=1)).isoformat(), "visit_id": visit,
            "campaign_id": s.w.campaign_id, "place_id": s.w["grid1"], "participants": [str(s.w["supervisor"])]}
    assert code(s.post(s.token("supervisor"), "open_visit", **body)) == (201, None)
    s.w.catch_up()
    listed = {who: [r["visit_id"] for r in s.get(s.token(who), f"/campaigns/{s.w.campaign_id}/visits").json()["rows"]]
              for who in ("supervisor2", "supervisor_in_a")}
    assert listed == {"supervisor2": [str(visit)], "supervisor_in_a": []}
    assert code(s.get(s.token("supervisor2"), f"/visits/{visit}")) == (200, None)
    assert code(s.get(s.token("supervisor_in_a"), f"/visits/{visit}")) == (403, "out_of_scope")


def test_a_leader_sees_the_problems_at_their_linked_places(s: Scoped) -> None:
    """li sees the problem at s1 (inside grid 1) in the ledger and by id; the one at s3 is 403 out_of_scope."""
    li = s.token("li")
    rows = s.get(li, f"/campaigns/{s.w.campaign_id}/ledger").json()["rows"]
    assert [r["problem_id"] for r in rows] == [str(s.w["p_a"])]
    assert code(s.get(li, f"/problems/{s.w['p_b']}")) == (403, "out_of_scope")


# --- tokens -----------------------------------------------------------------------------------------------


def test_an_expired_token_is_refused_at_once(s: Scoped) -> None:
    """A token past its expiry answers 401 token_expired on reads and writes alike; one still in time works."""
    headers = s.token("hq", expires_in=timedelta(hours=1))
    assert code(s.get(headers, f"/campaigns/{s.w.campaign_id}")) == (200, None)
    with psycopg.connect(s.w.system.database_url, autocommit=True) as conn:
        conn.execute("UPDATE dudao_tokens SET expires_at = clock_timestamp() - interval '1 second'"
                     " WHERE token_sha256 = %s", (token_digest(headers["Authorization"].removeprefix("Bearer ")),))
    assert code(s.get(headers, f"/campaigns/{s.w.campaign_id}")) == (401, "token_expired")
    assert code(s.post(headers, "withdraw_problem", problem_id=s.w["p_a"], reason="重复")) == (401, "token_expired")


def test_dudao_tokens_create_issues_a_scoped_expiring_token(s: Scoped, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dudao tokens create --unit U --expires-in-days 30` stores the scope and an expiry 30 days out; it works."""
    monkeypatch.setenv("DUDAO_DATABASE_URL", s.w.system.database_url)
    out = CliRunner().invoke(cli, ["tokens", "create", "--role", "unit_officer", "--person", str(s.w["officer_a"]),
                                   "--unit", str(s.w["unit_a"]), "--expires-in-days", "30", "--json"])
    assert out.exit_code == 0, out.output
    issued = json.loads(out.stdout)
    with psycopg.connect(s.w.system.database_url, autocommit=True) as conn:
        row = conn.execute("SELECT unit_ids, expires_at - clock_timestamp() FROM dudao_tokens WHERE token_sha256 = %s",
                           (token_digest(issued["token"]),)).fetchone()
    assert row is not None and row[0] == [s.w["unit_a"]] and timedelta(days=29) < row[1] <= timedelta(days=30)
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert code(s.post(headers, "acknowledge_problem", problem_id=s.w["p_a"])) == (201, None)


def test_the_tokens_table_of_an_older_release_gains_the_new_columns(blank_database_url: str) -> None:
    """A tokens table without expiry and scope columns gets them, twice over without error, keeping its rows."""
    with psycopg.connect(blank_database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE dudao_tokens (token_sha256 text PRIMARY KEY, person_id uuid NULL, role text NOT NULL,"
                     " name text, campaign_id uuid NULL, created_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
                     " revoked_at timestamptz NULL)")
        conn.execute("INSERT INTO dudao_tokens (token_sha256, role) VALUES ('old', 'admin')")
        ensure_tokens_table(conn)
        ensure_tokens_table(conn)
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'dudao_tokens'")}
        assert {"expires_at", "unit_ids", "place_ids"} <= columns
        assert conn.execute("SELECT role, expires_at FROM dudao_tokens").fetchall() == [("admin", None)]
