"""The authorization matrix (授权矩阵): every registered command × every role, and every command against another
campaign's entity, generated from the handler registry (`infra.commands.HANDLERS`).

`ALLOWED` below is the one table of who may issue what (DESIGN §1, §5, §9), written out role by role
rather than read back from the handlers, so it can disagree with them. A command registered without a
row fails `test_every_registered_command_has_a_row`, so no command ships without one; a command that
carries an id its handler does not declare as a reference, target or new id fails
`test_every_id_a_command_carries_is_declared`, so none skips the campaign check either.

The role sweep posts a sample of every command (valid in shape, naming entities that exist nowhere)
with a token of every role: a role outside the row must be refused up front (403 `read_only_role` or
`role_not_allowed`, nothing written); a role inside it must get past the role check (whatever the
rule then says). The campaign sweep posts every command aimed at campaign B — B named in the body,
or B's entity as its target — with a token bound to campaign A: every one must be 403
`campaign_not_allowed`. Each sweep prints how many pairs it tried and how many were wrongly
accepted (2xx) or wrongly answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain import problem as pr
from domain import visit as vi
from domain.consequences import accountability as ac
from domain.consequences import bulletin as bu
from domain.consequences import summons as su
from domain.escalation import notice as no
from domain.escalation.notice import Party
from domain.kernel.base import Command
from domain.kernel.roles import ROLES
from domain.liaison import DesignateLeader
from domain.tasks import DefineTask
from infra.bootstrap import System, bootstrap, load_handlers
from infra.commands import HANDLERS, snake_case
from infra.commands.grants import create_token
from infra.commands.references import undeclared
from infra.http import create_app
from tests.support.problem_world import World, build_world
from tests.support.samples import sample_model

pytestmark = pytest.mark.integration

# --- the table: who may issue what ------------------------------------------------------------------------
HQ = {"admin", "hq_office"}  # 系统管理员 and 总指挥部办公室: structure, policy, 交办, 通报
UNIT = {"unit_officer", "unit_head"}  # 责任单位: 签收, 整改, 申请转办/协调/延期 — for their own unit
INSPECTORS = {"supervisor", "leader", "hq_office"}  # 督导组 and 挂钩领导: visits, problems, 复查
PROCESS_OR_HQ = {"system", "hq_office"}  # escalation steps and duty work: the escalator, or HQ by hand
PEOPLE = {"admin", "hq_office", "hq_leader", "supervisor", "leader", "unit_head", "unit_officer", "discipline"}

ALLOWED: dict[str, set[str]] = {
    # campaign, structure, indicators, responsibilities, policies (指挥体系与政策)
    **dict.fromkeys(["StartCampaign", "RenameCampaign", "RegisterUnit", "RenameUnit", "MoveUnit", "RetireUnit",
                     "RegisterPlace", "RenamePlace", "MovePlace", "RetirePlace", "RegisterPerson", "RenamePerson",
                     "JoinUnit", "LeaveUnit", "RetirePerson", "DefineIndicator", "AssignResponsibility",
                     "RevokeResponsibility", "SetDeadlinePolicy", "SetRelapseWindow", "SetCategoryRouting",
                     "ConfigureCategories", "SetCalendarDays", "SetLateEntryWindow", "SetAutoAssignment",
                     "SetEscalationLadder", "SetRankingPolicy"], HQ),
    # problems (问题): found by inspectors, handed over by HQ (or routed by the system), rectified by the unit
    "ReportProblem": INSPECTORS,
    "AssignProblem": HQ | {"system"}, "TransferProblem": HQ | {"system"},
    **dict.fromkeys(["SubmitRectification", "RequestTransfer", "RequestCoordination", "RequestExtension"], UNIT),
    # HQ also enters a paper 签收/复查 late (补录, with occurred_at and a reason); without occurred_at the rule refuses it
    "AcknowledgeProblem": UNIT | HQ, "VerifyRectification": INSPECTORS | HQ, "RejectRectification": INSPECTORS | HQ,
    **dict.fromkeys(["CloseProblem", "ApproveTransfer", "RejectTransfer", "ResolveCoordination", "ApproveExtension",
                     "RejectExtension", "ParkProblem", "ResumeProblem", "WithdrawProblem", "DismissDuplicateFlag",
                     "MergeProblem"], HQ),
    # visits (督导)
    **dict.fromkeys(["LogVisit", "OpenVisit", "AddFinding", "CloseVisit"], INSPECTORS),
    # notices and escalation (通知, 督办)
    "IssueNotice": HQ | {"system"}, "AcknowledgeNotice": PEOPLE, "TakeEscalationStep": PROCESS_OR_HQ,
    # bulletins (通报)
    **dict.fromkeys(["DraftBulletin", "EditBulletin", "IssueBulletin"], HQ), "AcknowledgeBulletin": PEOPLE,
    # summons and accountability (约谈, 问责): the system proposes, people decide
    "ProposeSummons": {"system", "admin", "hq_office", "discipline"},
    **dict.fromkeys(["ScheduleSummons", "HoldSummons", "CancelSummons"], {"admin", "hq_office", "discipline"}),
    "ProposeAccountability": {"system", "admin", "hq_office", "discipline"},
    "OpenAccountabilityCase": {"hq_office", "discipline"}, "DeclineAccountabilityProposal": {"hq_office", "discipline"},
    "DecideMeasures": {"discipline", "hq_leader"}, "DecideAppeal": {"discipline", "hq_leader"},
    "CloseAccountabilityCase": {"discipline", "hq_leader", "hq_office"}, "FileAppeal": PEOPLE,
    # liaison duties (挂钩联系)
    **dict.fromkeys(["DesignateLeader", "LinkLiaison", "EndLiaisonLink", "HandOverLiaison", "GrantDutyExemption",
                     "RevokeDutyExemption", "SetLiaisonDutyPolicy", "CloseLiaisonDuty"], HQ),
    **dict.fromkeys(["RemindLiaisonDuty", "RecordUnmetLiaisonDuty", "ResolveLiaisonDuty"], PROCESS_OR_HQ),
    # tasks (任务分解)
    **dict.fromkeys(["DefineTask", "AssignTask", "AcceptTaskCompletion", "ReturnTaskCompletion",
                     "ApproveTaskExtension", "RejectTaskExtension"], HQ),
    **dict.fromkeys(["AcknowledgeTask", "ReportTaskProgress", "ClaimTaskCompletion", "RequestTaskExtension"], UNIT),
    "RecordMissedReport": PROCESS_OR_HQ,
}
ROLE_REFUSALS = {"read_only_role", "role_not_allowed"}


def registered() -> dict[str, Any]:
    load_handlers()
    return {command.__name__: handler for command, handler in HANDLERS.items()}


def test_every_registered_command_has_a_row() -> None:
    """The table names exactly the registered commands: a new command without its row fails here."""
    names = set(registered())
    assert {"missing rows": sorted(names - set(ALLOWED)), "rows for no command": sorted(set(ALLOWED) - names)} == {
        "missing rows": [], "rows for no command": []}


def test_every_id_a_command_carries_is_declared() -> None:
    """Every id-carrying field of every command is declared as target, reference, new or own id (or is campaign_id)."""
    missing = {name: gaps for name, h in registered().items()
               if (gaps := undeclared(h.command, h.refs, frozenset({"campaign_id"})))}
    assert missing == {}


def test_the_table_and_the_handlers_agree_on_every_role() -> None:
    """The roles each handler lets through are the table's (the HTTP sweep below shows the service enforces them)."""
    let_through = {name: set(h.roles) if h.roles is not None else set(ROLES) for name, h in registered().items()}
    assert {n: sorted(r ^ ALLOWED[n]) for n, r in let_through.items() if r != ALLOWED.get(n)} == {}


# --- the sweeps over HTTP ---------------------------------------------------------------------------------


@dataclass
class Tally:
    """How one sweep went: pairs tried, and the wrong answers (2xx where a refusal was due, or another answer)."""

    name: str
    tried: int = 0
    accepted: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def record(self, pair: str, status: int, code: str | None, ok: bool) -> None:
        self.tried += 1
        if not ok:
            (self.accepted if 200 <= status < 300 else self.wrong).append(f"{pair}: {status} {code}")

    def report(self) -> str:
        return (f"{self.name}: {self.tried} authorization pairs tried, {len(self.accepted)} wrongly accepted, "
                f"{len(self.wrong)} wrongly answered")


@pytest.fixture
def system(database_url: str, clock: Any) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock)
    yield s
    s.close()


def token(system: System, role: str, campaign_id: UUID | None = None, person_id: UUID | None = None) -> dict[str, str]:
    with psycopg.connect(system.database_url, autocommit=True) as conn:
        return {"Authorization": f"Bearer {create_token(conn, role, person_id=person_id, campaign_id=campaign_id)}"}


def sample_body(command: type[Command], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = sample_model(command).model_dump(mode="json")
    return {**body, "command_id": str(uuid4()), **{k: str(v) for k, v in changes.items()}}


def test_every_role_is_refused_every_command_outside_its_row(system: System, capsys: pytest.CaptureFixture[str]) -> None:
    """All commands × all roles over HTTP: outside the row, 403 before anything is read; inside, past the role check."""
    tally = Tally("role × command")
    tokens = {role: token(system, role) for role in ROLES}
    with TestClient(create_app(system), raise_server_exceptions=False) as client:
        for name, handler in sorted(registered().items()):
            for role in ROLES:
                head = system.app.recorder.max_notification_id() or 0
                response = client.post(f"/commands/{snake_case(name)}", json=sample_body(handler.command),
                                       headers=tokens[role])
                code = response.json().get("code") if response.status_code >= 400 else None
                refused = response.status_code == 403 and code in ROLE_REFUSALS
                wrote = (system.app.recorder.max_notification_id() or 0) != head
                ok = (not refused) if role in ALLOWED[name] else (refused and not wrote)
                tally.record(f"{name} as {role}", response.status_code, code, ok)
    with capsys.disabled():
        print(f"\n{tally.report()}")
    assert (tally.accepted, tally.wrong) == ([], [])
    assert tally.tried == len(ROLES) * len(ALLOWED)


# --- campaign B, whose every kind of entity a command can act on exists -----------------------------------


def campaign_b(system: System) -> tuple[World, dict[str, UUID]]:
    """A campaign with one entity of every kind a command without a campaign in its body can act on."""
    w = build_world(system)
    hq, sup = w.actors["hq"], w.actors["supervisor"]
    w.send(sup, pr.ReportProblem, problem_id=w["problem"], campaign_id=w.campaign_id, category="clutter",
           place_id=w["s1"], description="占道经营", source="hotline")
    w.send(sup, vi.OpenVisit, occurred_at=w.system.clock() - timedelta(hours=1), visit_id=w["visit"],
           campaign_id=w.campaign_id, place_id=w["grid1"], participants=(w["supervisor"],))
    unit_b = Party(party_kind="unit", party_id=w["unit_b"])
    w.send(hq, no.IssueNotice, notice_id=w["notice"], campaign_id=w.campaign_id, notice_kind="urge",
           subject_kind="problem", subject_id=w["problem"], recipients=(unit_b,), text_zh="请整改")
    basis = (ac.BasisRef(kind="problem", id=w["problem"]),)
    w.send(hq, ac.ProposeAccountability, case_id=w["case"], campaign_id=w.campaign_id, subject=unit_b,
           reason_zh="逾期", basis=basis)
    w.send(hq, su.ProposeSummons, summons_id=w["summons"], campaign_id=w.campaign_id, subject=unit_b,
           convener="hq", reason_zh="逾期", basis=basis)
    w.send(hq, bu.DraftBulletin, bulletin_id=w["bulletin"], campaign_id=w.campaign_id, period_start=date(2021, 12, 1),
           period_end=date(2021, 12, 7), title="第一期通报", body_zh="通报内容")
    w.send(hq, DesignateLeader, person_id=w["hq"], campaign_id=w.campaign_id, body="government", rank="副市长")
    w.send(hq, DefineTask, task_id=w["task"], campaign_id=w.campaign_id, name="背街小巷整治")
    targets = {kind: w[kind] for kind in ("problem", "visit", "notice", "case", "summons", "bulletin", "task")}
    return w, {**targets, "accountability_case": w["case"], "unit": w["unit_a"], "place": w["grid1"],
               "person": w["supervisor"], "liaison": w["hq"]}


def aimed_at_b(handler: Any, b: World, entities: dict[str, UUID]) -> dict[str, Any] | None:
    """The command's sample aimed at campaign B: B named in the body, else B's entity as its target (None: no such
    entity in B, which the test reports)."""
    fields = handler.command.model_fields
    if "campaign_id" in fields:
        return sample_body(handler.command, campaign_id=b.campaign_id)
    target_field = {"liaison": "person_id", "accountability_case": "case_id"}.get(handler.kind, f"{handler.kind}_id")
    if handler.kind not in entities or target_field not in fields:
        return None
    return sample_body(handler.command, **{target_field: entities[handler.kind]})


def test_every_command_aimed_at_another_campaign_is_refused(system: System,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Every command, aimed at campaign B by body or by target, with an A-bound token of a role its row allows: 403."""
    a = build_world(system)
    b, entities = campaign_b(system)
    tally, unaimed = Tally("command × other campaign"), []
    with TestClient(create_app(system), raise_server_exceptions=False) as client:
        for name, handler in sorted(registered().items()):
            body = aimed_at_b(handler, b, entities)
            if body is None:
                unaimed.append(name)
                continue
            role = sorted(ALLOWED[name] - {"system"} or ALLOWED[name])[0]
            head = system.app.recorder.max_notification_id() or 0
            response = client.post(f"/commands/{snake_case(name)}", json=body,
                                   headers=token(system, role, campaign_id=a.campaign_id))
            code = response.json().get("code") if response.status_code >= 400 else None
            wrote = (system.app.recorder.max_notification_id() or 0) != head
            tally.record(f"{name} as {role} of A", response.status_code, code,
                         response.status_code == 403 and code == "campaign_not_allowed" and not wrote)
    with capsys.disabled():
        print(f"\n{tally.report()}")
    assert (tally.accepted, tally.wrong) == ([], [])
    assert unaimed == [], f"add an entity of these commands' target kinds to campaign_b: {unaimed}"
