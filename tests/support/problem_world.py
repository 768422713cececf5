"""A small campaign for problem-loop tests: two grids with sites, two lead units, a supervisor, officers, HQ.

Built through the real command service, then the projections are caught up so gather functions
(matrix, memberships, ledger) see it. `World.send` issues a command as one of the cast, after
uploading the photos it cites to the world's campaign (as a field app uploads before it cites);
`World.upload` does that alone, and a test that means to cite an unknown photo calls the service itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from domain.kernel.base import Actor, Command
from domain.structure.campaign import StartCampaign
from domain.structure.person import JoinUnit, RegisterPerson
from domain.structure.place import RegisterPlace
from domain.policy.campaign import DeadlineLimit, TimeLimit
from domain.policy.commands import SetDeadlinePolicy
from domain.problem.events import EvidenceRef
from domain.structure.responsibility import AssignResponsibility
from domain.kernel.taxonomy import Severity
from domain.structure.unit import RegisterUnit
from infra.bootstrap import System
from infra.commands.service import CommandResult
from infra.store.uploads import cited_evidence, record_evidence

ADMIN = Actor(person_id=uuid4(), role="admin", name="管理员")
# A 1×1 PNG: real image bytes for upload tests.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201a5f6d8d30000000049454e44ae426082"
)


def photo(tag: str) -> EvidenceRef:
    """An evidence reference to synthetic bytes (the domain needs only hash, type and size)."""
    return EvidenceRef(sha256=hashlib.sha256(tag.encode()).hexdigest(), media_type="image/jpeg", size=120_000)


@dataclass
class World:
    system: System
    campaign_id: UUID = field(default_factory=uuid4)
    ids: dict[str, UUID] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)

    def __getitem__(self, name: str) -> UUID:
        return self.ids.setdefault(name, uuid4())

    def send(self, who: str | Actor, build: type[Command], **fields: Any) -> CommandResult:
        actor = who if isinstance(who, Actor) else self.actors[who]
        command = build(command_id=str(uuid4()), **fields)
        self.upload(cited_evidence(command), actor)
        return self.system.service.handle(command, actor)

    def upload(self, photos: tuple[EvidenceRef, ...], uploader: Actor = ADMIN) -> None:
        """Register the photos as uploaded to this world's campaign (the domain reads only the registry)."""
        if not photos:
            return
        with self.system.app.store.datastore.get_connection() as conn:
            for ref in photos:
                record_evidence(conn, ref, self.campaign_id, uploader)

    def catch_up(self) -> None:
        self.system.projector.catch_up()

    def log_head(self) -> int:
        return self.system.app.recorder.max_notification_id() or 0

    def person(self, name: str, role: str, unit: str, roles: tuple[str, ...]) -> None:
        self.send(ADMIN, RegisterPerson, person_id=self[name], campaign_id=self.campaign_id, name=name)
        self.send(ADMIN, JoinUnit, person_id=self[name], unit_id=self[unit], roles=roles)
        self.actors[name] = Actor(person_id=self[name], role=role, name=name)


def build_world(system: System, deadline_days: int = 3) -> World:
    """HQ with office and 检查督导组; 城管局 leads grid 1 (sites s1, s2), 住建局 leads grid 2 (site s3)."""
    w = World(system)
    w.send(ADMIN, StartCampaign, campaign_id=w.campaign_id, name="高安市“三城同创”", jurisdiction="江西省宜春市高安市",
           launched_on=date(2021, 12, 3))
    w.send(ADMIN, RegisterUnit, unit_id=w["hq_unit"], campaign_id=w.campaign_id, name="总指挥部", unit_kind="hq")
    for name, kind in (("office", "office"), ("inspectors", "group"), ("unit_a", "department"),
                       ("unit_b", "department")):
        w.send(ADMIN, RegisterUnit, unit_id=w[name], campaign_id=w.campaign_id, name=name, unit_kind=kind,
               parent_id=w["hq_unit"])
    for name, kind, parent, number in (("grid1", "grid", None, 1), ("grid2", "grid", None, 2), ("s1", "site", "grid1", None),
                                       ("s2", "site", "grid1", None), ("s3", "site", "grid2", None)):
        w.send(ADMIN, RegisterPlace, place_id=w[name], campaign_id=w.campaign_id, name=name, place_kind=kind,
               parent_id=w[parent] if parent else None, number=number)
    for grid, unit in (("grid1", "unit_a"), ("grid2", "unit_b")):
        w.send(ADMIN, AssignResponsibility, campaign_id=w.campaign_id, scope_kind="place", scope_id=w[grid],
               party_kind="unit", party_id=w[unit], role="lead")
    w.person("hq", "hq_office", "office", ("hq_office",))
    w.person("supervisor", "supervisor", "inspectors", ("supervisor",))
    w.person("supervisor_in_a", "supervisor", "unit_a", ("supervisor",))
    w.person("officer_a", "unit_officer", "unit_a", ("unit_officer",))
    w.person("officer_b", "unit_officer", "unit_b", ("unit_officer",))
    w.send("hq", SetDeadlinePolicy, campaign_id=w.campaign_id, default=TimeLimit(amount=deadline_days),
           limits=(DeadlineLimit(severity=Severity.SERIOUS, limit=TimeLimit(amount=1)),))
    w.catch_up()
    return w


def report_at(w: World, place: str) -> UUID:
    """The supervisor reports a litter problem (绿化带内垃圾) at the world's `place`, with a photo; returns its id."""
    from domain import problem as pr

    pid = w["problem_" + place]
    w.send("supervisor", pr.ReportProblem, problem_id=pid, campaign_id=w.campaign_id, category="sanitation",
           place_id=w[place], description="绿化带内垃圾", evidence=(photo(place),), source="assessment")
    return pid
