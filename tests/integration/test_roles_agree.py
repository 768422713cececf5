"""The domain and the HTTP API give the same answer to every role × 问责 command, and it is DESIGN's.

For each role and each accountability command, a case is brought to the state the command needs
(in a started campaign whose problem is the basis and whose registered people are the subjects);
the domain rule is asked directly (does it raise Forbidden?) and then the same command is posted
with a token of that role (201 or 403?). Both answers must agree, and match who may do what:
auditors (督查室/审计) read everything and write nothing, 纪委 (discipline) opens and decides,
the HQ office proposes, opens and closes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain.consequences import accountability as ac
from domain.escalation.notice import Party
from domain.kernel.base import Actor, Command, CommandContext, DomainEvent, Forbidden, Meta
from domain.kernel.roles import ROLES
from domain.problem import ReportProblem
from domain.structure.campaign import StartCampaign
from domain.structure.person import RegisterPerson
from domain.structure.place import RegisterPlace
from infra.bootstrap import System, bootstrap
from infra.http import create_app
from infra.http.auth import create_token
from infra.http.commands import snake_case
from infra.http.queries import load_state

pytestmark = pytest.mark.integration

CAMPAIGN, PLACE = uuid4(), uuid4()
BASIS = (ac.BasisRef(kind="problem", id=uuid4()),)  # a problem reported in CAMPAIGN by the fixture
DISCIPLINE = Actor(person_id=uuid4(), role="discipline")
SUBJECT = Actor(person_id=uuid4(), role="unit_officer")  # the person a case is against, unless the test says otherwise
ADMIN = Actor(person_id=uuid4(), role="admin")

# Who may do what (DESIGN §1, §5): the system and HQ propose; HQ office and 纪委 open or decline;
# 纪委 and the 总指挥长 decide; the subject appeals; closing adds the HQ office. Auditors: nothing.
EXPECTED: dict[str, set[str]] = {
    "ProposeAccountability": {"system", "admin", "hq_office", "discipline"},
    "OpenAccountabilityCase": {"hq_office", "discipline"},
    "DeclineAccountabilityProposal": {"hq_office", "discipline"},
    "DecideMeasures": {"discipline", "hq_leader"},
    "FileAppeal": {"admin", "hq_office", "hq_leader", "supervisor", "leader", "unit_head", "unit_officer", "discipline"},
    "DecideAppeal": {"discipline", "hq_leader"},
    "CloseAccountabilityCase": {"discipline", "hq_leader", "hq_office"},
}


def cid() -> str:
    return str(uuid4())


def propose(case: UUID, subject: UUID) -> Command:
    return ac.ProposeAccountability(command_id=cid(), case_id=case, campaign_id=CAMPAIGN, reason_zh="逾期15个工作日",
                                    subject=Party(party_kind="person", party_id=subject), basis=BASIS)


def open_directly(case: UUID, subject: UUID) -> Command:
    return ac.OpenAccountabilityCase(command_id=cid(), case_id=case, campaign_id=CAMPAIGN, reason_zh="多次通报仍未整改",
                                     subject=Party(party_kind="person", party_id=subject), basis=BASIS)


def decide(case: UUID, _: UUID) -> Command:
    return ac.DecideMeasures(command_id=cid(), case_id=case, measures=("admonishment",), reason_zh="诫勉谈话")


def appeal(case: UUID, _: UUID) -> Command:
    return ac.FileAppeal(command_id=cid(), case_id=case, reason="已按期整改")


Step = Callable[[UUID, UUID], Command]
# Command under test → (the steps that bring a case to the state it needs, each with its actor; the command).
SCENARIOS: dict[str, tuple[list[tuple[Step, Actor]], Step, Callable[..., list[DomainEvent]]]] = {
    "ProposeAccountability": ([], propose, ac.propose_accountability),
    "OpenAccountabilityCase": ([(propose, DISCIPLINE)], lambda c, s: ac.OpenAccountabilityCase(
        command_id=cid(), case_id=c, campaign_id=CAMPAIGN), ac.open_case),
    "DeclineAccountabilityProposal": ([(propose, DISCIPLINE)], lambda c, s: ac.DeclineAccountabilityProposal(
        command_id=cid(), case_id=c, reason="情节轻微"), ac.decline_proposal),
    "DecideMeasures": ([(open_directly, DISCIPLINE)], decide, ac.decide_measures),
    "FileAppeal": ([(open_directly, DISCIPLINE), (decide, DISCIPLINE)], appeal,
                   lambda state, cmd, ctx: ac.file_appeal(state, cmd, ctx, ac.CaseRefs())),
    "DecideAppeal": ([(open_directly, DISCIPLINE), (decide, DISCIPLINE), (appeal, SUBJECT)],
                     lambda c, s: ac.DecideAppeal(command_id=cid(), case_id=c, outcome="upheld", reason_zh="维持"),
                     ac.decide_appeal),
    "CloseAccountabilityCase": ([(open_directly, DISCIPLINE), (decide, DISCIPLINE)],
                                lambda c, s: ac.CloseAccountabilityCase(command_id=cid(), case_id=c), ac.close_case),
}


@pytest.fixture
def system(database_url: str, clock: Any) -> Iterator[System]:
    s = bootstrap(database_url, clock=clock)
    cid = "roles-agree"
    s.service.handle(StartCampaign(command_id=f"{cid}:campaign", campaign_id=CAMPAIGN, name="高安市“三城同创”",
                                   jurisdiction="高安市", launched_on=date(2021, 12, 3)), ADMIN)
    s.service.handle(RegisterPlace(command_id=f"{cid}:place", place_id=PLACE, campaign_id=CAMPAIGN, name="第一网格",
                                   place_kind="grid"), ADMIN)
    for actor in (DISCIPLINE, SUBJECT):
        register(s, actor.person_id)
    s.service.handle(ReportProblem(command_id=f"{cid}:problem", problem_id=BASIS[0].id, campaign_id=CAMPAIGN,
                                   category="clutter", place_id=PLACE, description="占道经营", source="hotline"),
                     Actor(person_id=uuid4(), role="supervisor"))
    yield s
    s.close()


def register(system: System, person: UUID | None) -> None:
    """A person of CAMPAIGN: a case's subject must be one (it is a reference checked by the service)."""
    assert person is not None
    system.service.handle(RegisterPerson(command_id=f"person:{person}", person_id=person, campaign_id=CAMPAIGN,
                                         name=str(person)[:8]), ADMIN)


def tokens(system: System) -> dict[str, tuple[Actor, str]]:
    """One token per role, each for a person of its own (the system acts as no person)."""
    out = {}
    with psycopg.connect(system.database_url) as conn:
        for role in ROLES:
            person = None if role == "system" else uuid4()
            if person is not None:
                register(system, person)
            out[role] = (Actor(person_id=person, role=role), create_token(conn, role, person_id=person))
    return out


def domain_allows(system: System, decision: Callable[..., list[DomainEvent]], case: UUID, cmd: Command,
                  actor: Actor) -> bool:
    """The rule's own answer on the case as stored: no Forbidden means allowed."""
    found = load_state(system.app, ac.CASE, case)
    now = datetime.now(timezone.utc)
    ctx = CommandContext(meta=Meta(actor=actor, occurred_at=now, recorded_at=now, correlation_id=uuid4(),
                                   command_id=cmd.command_id, campaign_id=CAMPAIGN))
    try:
        assert decision(found[0] if found else None, cmd, ctx)
    except Forbidden:
        return False
    return True


def test_domain_and_http_agree_on_every_role_and_accountability_command(system: System) -> None:
    """For each role × 问责 command, the rule refuses (403) exactly when the API does, and both follow DESIGN."""
    by_role = tokens(system)
    answers: dict[tuple[str, str], tuple[bool, int]] = {}
    with TestClient(create_app(system), raise_server_exceptions=False) as client:
        for name, (steps, command, decision) in SCENARIOS.items():
            for role, (actor, token) in by_role.items():
                case = uuid4()
                subject = actor.person_id if name == "FileAppeal" and actor.person_id else SUBJECT.person_id
                assert subject is not None
                for step, by in steps:
                    system.service.handle(step(case, subject), by)
                cmd = command(case, subject)
                allowed = domain_allows(system, decision, case, cmd, actor)
                response = client.post(f"/commands/{snake_case(name)}", json=cmd.model_dump(mode="json"),
                                       headers={"Authorization": f"Bearer {token}"})
                answers[(name, role)] = (allowed, response.status_code)
    assert {k: v for k, v in answers.items() if v not in ((True, 201), (False, 403))} == {}
    assert {name: {role for (n, role), (allowed, _) in answers.items() if n == name and allowed}
            for name in SCENARIOS} == EXPECTED
