"""Audit over HTTP against real PostgreSQL: `as_of` on the entity routes and the matrix replayed from the store, and
who may read the audit — the auditor and discipline tokens of a campaign read every trail, as-of and knowledge
view, escalation replay and dossier of it; a token bound to another campaign and a unit officer are refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain import problem as pr
from domain.consequences.accountability import BasisRef, ProposeAccountability
from domain.escalation.notice import AcknowledgeNotice, NoticeIssued, Party
from domain.structure.responsibility import AssignResponsibility
from domain.structure.unit import RenameUnit
from infra.bootstrap import bootstrap
from infra.clock import SimulatedClock
from infra.http import create_app
from infra.http.auth import create_token
from tests.support.databases import Databases
from tests.support.dossier import parse
from tests.support.escalation_kit import at, escalation_world, events_of
from tests.support.problem_world import ADMIN, World

pytestmark = pytest.mark.integration


@dataclass
class Audited:
    world: World
    client: TestClient
    problem: UUID
    notice: UUID
    case: UUID

    def token(self, role: str, person: str | None = None, campaign_id: UUID | None = None) -> dict[str, str]:
        person_id = self.world[person] if person else None
        with psycopg.connect(self.world.system.database_url) as conn:
            token = create_token(conn, role, person_id=person_id, campaign_id=campaign_id or self.world.campaign_id)
        return {"Authorization": f"Bearer {token}"}

    def get(self, path: str, headers: dict[str, str], status: int = 200, /, **params: Any) -> Any:
        response = self.client.get(path, params=params, headers=headers)
        assert response.status_code == status, (path, response.text)
        return response


@pytest.fixture(scope="module")
def audited(databases: Databases) -> Iterator[Audited]:
    """A problem at site s1 (in grid 1, 城管局 unit_a) reported 12-06 10:00 and handed over at 11:00, its 交办单 signed
    on 12-07; on 12-10 unit_a is renamed and made lead of grid 2 back from 12-03 (superseding unit_b), and
    HQ proposes 问责 against unit_a on the problem."""
    clock = SimulatedClock(at("2021-12-01", "09:00"))
    system = bootstrap(databases.clone("audit_http"), clock=clock)
    w = escalation_world(system)
    problem = uuid4()
    clock.set(at("2021-12-06", "10:00"))
    w.send("supervisor", pr.ReportProblem, problem_id=problem, campaign_id=w.campaign_id, category="sanitation",
           place_id=w["s1"], description="人行道垃圾堆积", source="hotline")
    clock.set(at("2021-12-06", "11:00"))
    w.send("hq", pr.AssignProblem, problem_id=problem)
    notice = next(n.notice_id for n in events_of(system, NoticeIssued) if n.subject_id == problem)
    clock.set(at("2021-12-07", "09:00"))
    w.send("officer_a", AcknowledgeNotice, notice_id=notice)
    clock.set(at("2021-12-10"))
    w.send(ADMIN, RenameUnit, unit_id=w["unit_a"], name="城管局（更名）")
    w.send(ADMIN, AssignResponsibility, campaign_id=w.campaign_id, scope_kind="place", scope_id=w["grid2"],
           party_kind="unit", party_id=w["unit_a"], role="lead", effective_from=at("2021-12-03"), reason="补录包片调整")
    case = uuid4()
    w.send("hq", ProposeAccountability, case_id=case, campaign_id=w.campaign_id,
           subject=Party(party_kind="unit", party_id=w["unit_a"]), reason_zh="问题长期未整改",
           basis=(BasisRef(kind="problem", id=problem),))
    w.catch_up()
    with TestClient(create_app(system)) as client:
        yield Audited(w, client, problem, notice, case)
    system.close()


def audit_paths(a: Audited) -> list[tuple[str, dict[str, str]]]:
    """Every kind of audit read, on this campaign's problem, unit, place, notice and case."""
    w, then = a.world, at("2021-12-06", "12:00").isoformat()
    return [(f"/problems/{a.problem}/trail", {}), (f"/problems/{a.problem}/trail", {"format": "csv"}),
            (f"/units/{w['unit_a']}/trail", {}), (f"/notices/{a.notice}/trail", {}),
            (f"/problems/{a.problem}/as_of", {"as_of": then}), (f"/places/{w['s1']}/as_of", {"as_of": then}),
            (f"/problems/{a.problem}/knowledge", {"as_of": then}), (f"/places/{w['grid1']}/knowledge", {"as_of": then}),
            (f"/campaigns/{w.campaign_id}/escalation_replay", {}),
            (f"/accountability_cases/{a.case}/escalation_replay", {}),
            (f"/accountability_cases/{a.case}/trail", {}), (f"/accountability_cases/{a.case}/dossier", {})]


@pytest.mark.parametrize("role", ["auditor", "discipline"])
def test_the_auditor_and_discipline_tokens_of_the_campaign_read_every_audit_view(audited: Audited, role: str) -> None:
    """Trails (JSON and CSV), as-of and knowledge views, both replays and the dossier all answer 200 with content."""
    headers = audited.token(role, "discipline" if role == "discipline" else None)
    for path, params in audit_paths(audited):
        response = audited.get(path, headers, **params)
        if path.endswith("/dossier"):
            page = parse(response.text)
            assert page.sections["case"]["data-case-id"] == str(audited.case) and page.rows_in[f"trail-{audited.problem}"]
        elif params.get("format") == "csv":
            assert response.headers["content-type"].startswith("text/csv") and str(audited.problem) in response.text
        else:
            assert response.json(), path
    trail = audited.get(f"/problems/{audited.problem}/trail", headers).json()
    assert {r["kind"] for r in trail["rows"]} >= {"problem", "notice", "accountability_case"}


def test_a_token_bound_to_another_campaign_is_refused_every_audit_view_without_a_word_of_it(audited: Audited) -> None:
    """An auditor of another campaign gets 403 campaign_not_allowed on each audit read, and no rows, state or page."""
    headers = audited.token("auditor", campaign_id=uuid4())
    for path, params in audit_paths(audited):
        response = audited.get(path, headers, 403, **params)
        body = response.json()
        assert body["code"] == "campaign_not_allowed", path
        assert not {"rows", "state", "known", "items"} & set(body) and "<html" not in response.text


@pytest.mark.parametrize("role", ["unit_officer", "supervisor"])
def test_a_unit_officer_or_supervisor_is_refused_the_audit(audited: Audited, role: str) -> None:
    """Roles outside the audit readers get 403 role_not_allowed on every audit read, even in their own campaign."""
    headers = audited.token(role, "officer_a" if role == "unit_officer" else "supervisor")
    for path, params in audit_paths(audited):
        assert audited.get(path, headers, 403, **params).json()["code"] == "role_not_allowed", path


def test_an_entity_route_with_as_of_answers_it_as_the_store_had_it_with_the_names_then(audited: Audited) -> None:
    """GET /units/{id}?as_of before the rename: the old name and an earlier version; now: the new name."""
    w, hq = audited.world, audited.token("hq_office", "hq")
    then = audited.get(f"/units/{w['unit_a']}", hq, as_of=at("2021-12-09").isoformat()).json()
    now = audited.get(f"/units/{w['unit_a']}", hq).json()
    assert (then["name"], now["name"]) == ("unit_a", "城管局（更名）") and then["version"] < now["version"]
    assert then["as_of"] == at("2021-12-09").isoformat()
    naive = audited.get(f"/units/{w['unit_a']}", hq, as_of="2021-12-09T10:00:00").json()  # the campaign's zone
    assert naive["as_of"] == then["as_of"]
    early = audited.get(f"/problems/{audited.problem}", hq, 404, as_of=at("2021-12-06", "09:00").isoformat()).json()
    assert early["code"] == "problem_not_found"


def test_a_problem_and_its_notice_as_of_a_past_instant_have_the_state_clock_and_timeline_then(audited: Audited) -> None:
    """At 10:30 the problem was reported, not handed over (no light, one timeline entry), at a place named s1 then;
    the 交办单 at noon of the 6th was not signed yet, and is signed now."""
    w, hq = audited.world, audited.token("hq_office", "hq")
    then = audited.get(f"/problems/{audited.problem}", hq, as_of=at("2021-12-06", "10:30").isoformat()).json()
    assert then["problem"]["state"] == "reported" and then["problem"]["unit_id"] is None
    assert then["clock"]["light"] is None and [r["version"] for r in then["timeline"]] == [1]
    assert then["names_in_force"][str(w["s1"])] == "s1" and then["now"] == then["as_of"]
    now = audited.get(f"/problems/{audited.problem}", hq).json()
    assert now["problem"]["unit_id"] == str(w["unit_a"]) and len(now["timeline"]) > 1
    unsigned = audited.get(f"/notices/{audited.notice}", hq, as_of=at("2021-12-06", "12:00").isoformat()).json()
    signed = audited.get(f"/notices/{audited.notice}", hq).json()
    assert unsigned["acks"] == [] and [a["at"] for a in signed["acks"]] == [at("2021-12-07", "09:00").isoformat()]
    assert unsigned["names_in_force"][str(w["unit_a"])] == "unit_a"


def test_the_matrix_as_of_is_replayed_from_the_store_and_says_which_basis(audited: Audited) -> None:
    """As of 12-05, stored: unit_a leads grid 2 (its lead was entered on the 10th back from the 3rd), under its name
    then; recorded: unit_b, as HQ knew it on the 5th. Without as_of the projection answers, with today's names."""
    w, hq = audited.world, audited.token("hq_office", "hq")
    path = f"/campaigns/{w.campaign_id}/matrix"

    def grid2_leads(body: dict[str, Any]) -> list[tuple[str, str]]:
        return [(r["party_id"], r["party_name"]) for r in body["rows"] if r["scope_id"] == str(w["grid2"])
                and r["role"] == "lead"]

    stored = audited.get(path, hq, as_of=at("2021-12-05").isoformat()).json()
    recorded = audited.get(path, hq, as_of=at("2021-12-05").isoformat(), basis="recorded").json()
    now = audited.get(path, hq).json()
    assert (stored["source"], stored["basis"], recorded["basis"], now["source"]) == (
        "event_store", "stored", "recorded", "projection")
    assert grid2_leads(stored) == [(str(w["unit_a"]), "unit_a")]
    assert grid2_leads(recorded) == [(str(w["unit_b"]), "unit_b")]
    assert grid2_leads(now) == [(str(w["unit_a"]), "城管局（更名）")]
    assert audited.get(path, hq, 422, as_of=at("2021-12-05").isoformat(), basis="later").json()["code"]
