"""Liaison duty compliance (挂钩联系履职情况): the facts as rows, and the verdicts computed from them at an instant.

The tables hold what the events say — leaders, links with their validity, exemptions, duty policy
versions, every visit with its participants and both times, the duty records (reminded, found
unmet, resolved) and each person's duty trail (履职轨迹) with actor, times, reason and
correlation/causation ids. They rebuild from the log to the same rows.

Whether a duty is met depends on the clock as much as on events (a period is pending until its
grace runs out), so the verdicts are not stored: `compliance` computes them with the domain's own
rules (`domain.liaison.judgement`) for any instant T, from the facts *known* at T — links,
exemptions and policy versions recorded by T, visits uploaded by T — which is what "as of T" means
for an accountability file: what the system could have said then.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg.types.json import Jsonb

from domain import liaison as li
from domain import visit as vi
from domain.escalation.ladder import STEP_NAMES_ZH
from domain.escalation.step import EscalationStepTaken
from domain.kernel.calendar import WorkCalendar
from domain.kernel.timefmt import format_local
from domain.liaison.periods import PERIOD_NAMES_ZH
from projections.base import Projection, RecordedEvent

Row = dict[str, Any]

DDL = (
    """CREATE TABLE IF NOT EXISTS liaison_leaders (
        person_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, body text NOT NULL, rank text NOT NULL,
        liaison_officer_id uuid NULL, designated_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS liaison_leaders_campaign ON liaison_leaders (campaign_id)",
    """CREATE TABLE IF NOT EXISTS liaison_links (
        link_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, person_id uuid NOT NULL, target_kind text NOT NULL,
        target_id uuid NOT NULL, valid_from timestamptz NOT NULL, valid_to timestamptz NULL,
        planned_to timestamptz NULL, reason text NOT NULL, end_reason text NULL, handover_from uuid NULL,
        handover_to uuid NULL, linked_at timestamptz NOT NULL, ended_at timestamptz NULL)""",
    "CREATE INDEX IF NOT EXISTS liaison_links_campaign ON liaison_links (campaign_id, person_id)",
    "CREATE INDEX IF NOT EXISTS liaison_links_target ON liaison_links (target_kind, target_id)",
    """CREATE TABLE IF NOT EXISTS liaison_exemptions (
        exemption_id uuid NOT NULL, person_id uuid NOT NULL, campaign_id uuid NOT NULL, exemption_kind text NOT NULL,
        starts_on date NOT NULL, ends_on date NOT NULL, reason text NOT NULL, granted_at timestamptz NOT NULL,
        revoked_at timestamptz NULL, revoke_reason text NULL, PRIMARY KEY (person_id, exemption_id))""",
    """CREATE TABLE IF NOT EXISTS liaison_policy_versions (
        campaign_id uuid NOT NULL, version int NOT NULL, effective_from timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL, rules jsonb NOT NULL, reason text NOT NULL, actor jsonb NOT NULL,
        correlation_id uuid NOT NULL, causation_id uuid NULL, command_id text NOT NULL, event_type text NOT NULL,
        notification_id bigint NOT NULL, PRIMARY KEY (campaign_id, version))""",
    """CREATE TABLE IF NOT EXISTS liaison_visits (
        visit_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, place_id uuid NOT NULL, participants uuid[] NOT NULL,
        occurred_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL, logged_by uuid NULL,
        problem_ids uuid[] NOT NULL DEFAULT '{}')""",
    "CREATE INDEX IF NOT EXISTS liaison_visits_participants ON liaison_visits USING gin (participants)",
    """CREATE TABLE IF NOT EXISTS liaison_duties (
        duty_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, person_id uuid NOT NULL, link_id uuid NOT NULL,
        period_start date NULL, period_end date NULL, reminded_at timestamptz NULL, notice_id uuid NULL,
        found_unmet_at timestamptz NULL, judged_at timestamptz NULL, due int NULL, done int NULL,
        policy_version int NULL, summary_zh text NULL, resolved_at timestamptz NULL, resolution text NULL,
        resolution_reason text NULL)""",
    "CREATE INDEX IF NOT EXISTS liaison_duties_person ON liaison_duties (person_id)",
    """CREATE TABLE IF NOT EXISTS liaison_trail (
        person_id uuid NOT NULL, notification_id bigint NOT NULL, seq int NOT NULL, entry_kind text NOT NULL,
        event_type text NOT NULL, subject_id uuid NULL, occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL, actor jsonb NOT NULL, correlation_id uuid NOT NULL, causation_id uuid NULL,
        command_id text NOT NULL, reason text NULL, details jsonb NOT NULL,
        PRIMARY KEY (person_id, notification_id, seq))""",
)


class LiaisonDutiesProjection(Projection):
    """挂钩联系履职: leaders, links, exemptions, duty policy versions, visits, duty records and each person's trail."""

    name = "liaison_duties"
    tables = ("liaison_leaders", "liaison_links", "liaison_exemptions", "liaison_policy_versions", "liaison_visits",
              "liaison_duties", "liaison_trail")
    ddl = DDL
    partial_kinds = frozenset({"visit"})  # a visit counts from when it is logged or opened; closing changes nothing

    def register(self) -> None:
        self.on(li.LeaderDesignated)(designated)
        self.on(li.LiaisonLinked)(linked)
        self.on(li.LiaisonLinkEnded)(link_ended)
        self.on(li.DutyExemptionGranted)(exemption_granted)
        self.on(li.DutyExemptionRevoked)(exemption_revoked)
        self.on(li.LiaisonDutyPolicySet)(policy_set)
        self.on(vi.VisitLogged, vi.VisitOpened)(visit_logged)
        self.on(vi.FindingAdded)(finding_added)
        self.on(li.LiaisonDutyReminded, li.LiaisonDutyFoundUnmet, li.LiaisonDutyResolved)(duty_changed)
        self.on(EscalationStepTaken)(step_taken)


# --- handlers ------------------------------------------------------------------------------------


def trail_line(curs: Cursor[Any], rec: RecordedEvent, person_id: UUID, entry_kind: str, *, seq: int = 0,
          subject_id: UUID | None = None, reason: str | None = None, **details: Any) -> None:
    """One line of a person's duty trail, carrying the event's envelope."""
    e, m = rec.event, rec.event.meta
    curs.execute(
        "INSERT INTO liaison_trail (person_id, notification_id, seq, entry_kind, event_type, subject_id, occurred_at,"
        " recorded_at, actor, correlation_id, causation_id, command_id, reason, details)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (person_id, rec.notification_id, seq, entry_kind, e.event_name, subject_id, m.occurred_at, m.recorded_at,
         Jsonb(m.actor.model_dump(mode="json")), m.correlation_id, m.causation_id, m.command_id, reason,
         Jsonb(_json(details))))


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, (UUID, date, datetime)):
        return value.isoformat() if not isinstance(value, UUID) else str(value)
    return value


def designated(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, li.LeaderDesignated)
    curs.execute(
        "INSERT INTO liaison_leaders (person_id, campaign_id, body, rank, liaison_officer_id, designated_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (person_id) DO UPDATE SET body = EXCLUDED.body,"
        " rank = EXCLUDED.rank, liaison_officer_id = EXCLUDED.liaison_officer_id, updated_at = EXCLUDED.updated_at",
        (e.person_id, e.campaign_id, e.body, e.rank, e.liaison_officer_id, e.meta.recorded_at, e.meta.recorded_at))
    trail_line(curs, rec, e.person_id, "designated", reason=e.reason, body=e.body, rank=e.rank,
          liaison_officer_id=e.liaison_officer_id)


def linked(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, li.LiaisonLinked)
    curs.execute(
        "INSERT INTO liaison_links (link_id, campaign_id, person_id, target_kind, target_id, valid_from, valid_to,"
        " planned_to, reason, handover_from, linked_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (link_id) DO NOTHING",
        (e.link_id, e.campaign_id, e.person_id, e.target_kind, e.target_id, e.valid_from, e.valid_to, e.valid_to,
         e.reason, e.handover_from, e.meta.recorded_at))
    trail_line(curs, rec, e.person_id, "linked", subject_id=e.link_id, reason=e.reason, target_kind=e.target_kind,
          target_id=e.target_id, valid_from=e.valid_from, valid_to=e.valid_to, handover_from=e.handover_from)


def link_ended(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, li.LiaisonLinkEnded)
    row = curs.execute("UPDATE liaison_links SET valid_to = %s, end_reason = %s, handover_to = %s, ended_at = %s"
                       " WHERE link_id = %s RETURNING target_kind, target_id",
                       (e.valid_to, e.reason, e.handover_to, e.meta.recorded_at, e.link_id)).fetchone()
    target = _get(row, "target_kind", 0), _get(row, "target_id", 1)
    trail_line(curs, rec, e.person_id, "link_ended", subject_id=e.link_id, reason=e.reason, target_kind=target[0],
          target_id=target[1], valid_to=e.valid_to, handover_to=e.handover_to)


def _get(row: Any, name: str, index: int) -> Any:
    if row is None:
        return None
    return row[name] if isinstance(row, dict) else row[index]


def exemption_granted(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, li.DutyExemptionGranted)
    curs.execute(
        "INSERT INTO liaison_exemptions (exemption_id, person_id, campaign_id, exemption_kind, starts_on, ends_on,"
        " reason, granted_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (e.exemption_id, e.person_id, e.campaign_id, e.exemption_kind, e.starts_on, e.ends_on, e.reason,
         e.meta.recorded_at))
    trail_line(curs, rec, e.person_id, "exemption_granted", subject_id=e.exemption_id, reason=e.reason,
          exemption_kind=e.exemption_kind, starts_on=e.starts_on, ends_on=e.ends_on)


def exemption_revoked(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, li.DutyExemptionRevoked)
    curs.execute("UPDATE liaison_exemptions SET revoked_at = %s, revoke_reason = %s"
                 " WHERE person_id = %s AND exemption_id = %s",
                 (e.meta.recorded_at, e.reason, e.person_id, e.exemption_id))
    trail_line(curs, rec, e.person_id, "exemption_revoked", subject_id=e.exemption_id, reason=e.reason)


def policy_set(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, li.LiaisonDutyPolicySet)
    rules = li.DutyRules(**e.model_dump(include=set(li.DutyRules.model_fields)))
    m = e.meta
    curs.execute(
        "INSERT INTO liaison_policy_versions (campaign_id, version, effective_from, recorded_at, rules, reason, actor,"
        " correlation_id, causation_id, command_id, event_type, notification_id) SELECT %s, COALESCE(max(version), 0)"
        " + 1, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM liaison_policy_versions WHERE campaign_id = %s",
        (e.campaign_id, e.effective_from, m.recorded_at, Jsonb(rules.model_dump(mode="json")), e.reason,
         Jsonb(m.actor.model_dump(mode="json")), m.correlation_id, m.causation_id, m.command_id, e.event_name,
         rec.notification_id, e.campaign_id))


def visit_logged(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, (vi.VisitLogged, vi.VisitOpened))
    problems = [f.problem_id for f in e.findings] if isinstance(e, vi.VisitLogged) else []
    curs.execute(
        "INSERT INTO liaison_visits (visit_id, campaign_id, place_id, participants, occurred_at, recorded_at, logged_by,"
        " problem_ids) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (visit_id) DO NOTHING",
        (e.visit_id, e.campaign_id, e.place_id, list(e.participants), e.meta.occurred_at, e.meta.recorded_at,
         e.meta.actor.person_id, problems))
    for seq, person in enumerate(dict.fromkeys(e.participants)):
        trail_line(curs, rec, person, "visit", seq=seq, subject_id=e.visit_id, place_id=e.place_id,
              lead=person == e.participants[0], visit_type=e.visit_type, findings=len(problems))


def finding_added(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, vi.FindingAdded)
    curs.execute("UPDATE liaison_visits SET problem_ids = array_append(problem_ids, %s) WHERE visit_id = %s"
                 " AND NOT (%s = ANY(problem_ids))", (e.finding.problem_id, e.visit_id, e.finding.problem_id))


def duty_changed(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, (li.LiaisonDutyReminded, li.LiaisonDutyFoundUnmet, li.LiaisonDutyResolved))
    curs.execute("INSERT INTO liaison_duties (duty_id, campaign_id, person_id, link_id) VALUES (%s, %s, %s, %s)"
                 " ON CONFLICT (duty_id) DO NOTHING", (e.duty_id, e.campaign_id, e.person_id, e.link_id))
    if isinstance(e, li.LiaisonDutyReminded):
        curs.execute("UPDATE liaison_duties SET reminded_at = %s, notice_id = %s, period_start = %s, period_end = %s"
                     " WHERE duty_id = %s", (e.meta.recorded_at, e.notice_id, e.period.start, e.period.end, e.duty_id))
        trail_line(curs, rec, e.person_id, "reminded", subject_id=e.duty_id, link_id=e.link_id, period=e.period.label,
              period_zh=e.period.label_zh, target_id=e.target_id, due=e.due, done=e.done, notice_id=e.notice_id)
    elif isinstance(e, li.LiaisonDutyFoundUnmet):
        curs.execute("UPDATE liaison_duties SET found_unmet_at = %s, judged_at = %s, due = %s, done = %s,"
                     " policy_version = %s, summary_zh = %s, period_start = %s, period_end = %s WHERE duty_id = %s",
                     (e.meta.recorded_at, e.judged_at, e.due, e.done, e.policy_version, e.summary_zh, e.period.start,
                      e.period.end, e.duty_id))
        trail_line(curs, rec, e.person_id, "found_unmet", subject_id=e.duty_id, link_id=e.link_id, period=e.period.label,
              period_zh=e.period.label_zh, target_id=e.target_id, due=e.due, done=e.done, judged_at=e.judged_at,
              policy_version=e.policy_version, policy_effective_from=e.policy_effective_from,
              summary_zh=e.summary_zh)
    else:
        curs.execute("UPDATE liaison_duties SET resolved_at = %s, resolution = %s, resolution_reason = %s, done = %s"
                     " WHERE duty_id = %s", (e.meta.recorded_at, e.resolution, e.reason, e.done, e.duty_id))
        trail_line(curs, rec, e.person_id, "resolved", subject_id=e.duty_id, reason=e.reason, link_id=e.link_id,
              resolution=e.resolution, visit_ids=e.visit_ids, due=e.due, done=e.done)


def step_taken(curs: Cursor[Any], rec: RecordedEvent) -> None:
    e = rec.event
    assert isinstance(e, EscalationStepTaken)
    if e.item_kind != li.ITEM_KIND:
        return
    row = curs.execute("SELECT person_id FROM liaison_duties WHERE duty_id = %s", (e.item_id,)).fetchone()
    if row is not None:
        trail_line(curs, rec, _get(row, "person_id", 0), "escalation_step", subject_id=e.item_id, step_id=e.step_id,
              step_name=e.step_name, level=e.level, due_at=e.due_at, notice_id=e.notice_id, summons_id=e.summons_id,
              case_id=e.case_id, told=e.told)


# --- reading the facts back ---------------------------------------------------------------------


def _rows(conn: Any, sql: str, params: Any) -> list[Row]:
    curs = conn.execute(sql, params)
    names = [d.name for d in curs.description]
    return [r if isinstance(r, dict) else dict(zip(names, r, strict=True)) for r in curs.fetchall()]


def policy_versions(conn: Any, campaign_id: UUID, known_at: datetime) -> list[li.DutyPolicy]:
    """The campaign's duty policy versions recorded by `known_at`, oldest first."""
    rows = _rows(conn, "SELECT version, effective_from, recorded_at, rules, reason FROM liaison_policy_versions"
                       " WHERE campaign_id = %s AND recorded_at <= %s ORDER BY version", (campaign_id, known_at))
    return [li.DutyPolicy(**r["rules"], effective_from=r["effective_from"], version=r["version"], reason=r["reason"],
                          recorded_at=r["recorded_at"]) for r in rows]


@dataclass
class Leader:
    """A leader as known at an instant: designation, links and exemptions (with names for display)."""

    person_id: UUID
    campaign_id: UUID
    name: str | None
    body: str
    rank: str
    liaison_officer_id: UUID | None
    officer_name: str | None
    links: list[li.Link]
    exemptions: list[li.Exemption]


_LEADERS = """
SELECT l.person_id, l.campaign_id, p.name, l.body, l.rank, l.liaison_officer_id, o.name AS officer_name
  FROM liaison_leaders l
  LEFT JOIN structure_persons p ON p.person_id = l.person_id
  LEFT JOIN structure_persons o ON o.person_id = l.liaison_officer_id
 WHERE l.campaign_id = %(campaign_id)s AND l.designated_at <= %(known_at)s
   AND (%(person_id)s::uuid IS NULL OR l.person_id = %(person_id)s::uuid)
 ORDER BY p.name NULLS LAST, l.person_id
"""


def leaders(conn: Any, campaign_id: UUID, known_at: datetime, person_id: UUID | None = None) -> list[Leader]:
    """The campaign's leaders with their links and exemptions as recorded by `known_at`."""
    params = {"campaign_id": campaign_id, "known_at": known_at, "person_id": person_id}
    found = {r["person_id"]: Leader(**r, links=[], exemptions=[]) for r in _rows(conn, _LEADERS, params)}
    for r in _rows(conn, """
            SELECT * FROM liaison_links WHERE campaign_id = %(campaign_id)s AND linked_at <= %(known_at)s
               AND (%(person_id)s::uuid IS NULL OR person_id = %(person_id)s::uuid)
             ORDER BY valid_from, link_id""", params):
        if r["person_id"] in found:
            found[r["person_id"]].links.append(_link(r, known_at))
    for r in _rows(conn, """
            SELECT * FROM liaison_exemptions WHERE campaign_id = %(campaign_id)s AND granted_at <= %(known_at)s
               AND (%(person_id)s::uuid IS NULL OR person_id = %(person_id)s::uuid)
             ORDER BY starts_on, exemption_id""", params):
        if r["person_id"] in found:
            revoked = r["revoked_at"] is not None and r["revoked_at"] <= known_at
            found[r["person_id"]].exemptions.append(li.Exemption(
                exemption_id=r["exemption_id"], exemption_kind=r["exemption_kind"], starts_on=r["starts_on"],
                ends_on=r["ends_on"], reason=r["reason"], revoked=revoked,
                revoke_reason=r["revoke_reason"] if revoked else None))
    return list(found.values())


def _link(r: Row, known_at: datetime) -> li.Link:
    """A link as known at `known_at`: an end recorded later is not yet known."""
    ended = r["ended_at"] is not None and r["ended_at"] <= known_at
    return li.Link(link_id=r["link_id"], target_kind=r["target_kind"], target_id=r["target_id"],
                   valid_from=r["valid_from"], valid_to=r["valid_to"] if ended else r["planned_to"],
                   reason=r["reason"], end_reason=r["end_reason"] if ended else None,
                   handover_from=r["handover_from"], handover_to=r["handover_to"] if ended else None)


# Places inside each target (descendants, as the tree is now); a unit's places are those it leads or led.
_PLACES = """
WITH RECURSIVE targets (link_id, place_id) AS (
    SELECT t.link_id, t.target_id FROM unnest(%(links)s::uuid[], %(kinds)s::text[], %(targets)s::uuid[])
                                       AS t(link_id, kind, target_id) WHERE t.kind = 'place'
    UNION
    SELECT t.link_id, a.scope_id FROM unnest(%(links)s::uuid[], %(kinds)s::text[], %(targets)s::uuid[])
                                       AS t(link_id, kind, target_id)
      JOIN matrix_assignments a ON t.kind = 'unit' AND a.party_kind = 'unit' AND a.party_id = t.target_id
                               AND a.scope_kind = 'place' AND a.role = 'lead'
), down (link_id, place_id, depth) AS (
    SELECT link_id, place_id, 0 FROM targets
    UNION
    SELECT d.link_id, sp.place_id, d.depth + 1 FROM down d JOIN structure_places sp ON sp.parent_id = d.place_id
     WHERE d.depth < 64
)
SELECT link_id, place_id, min(depth) AS depth FROM down GROUP BY link_id, place_id
"""


def link_places(conn: Any, links: Sequence[li.Link]) -> dict[UUID, li.LinkPlaces]:
    """Per link, where visits count: the linked place (or a linked unit's places) and the places inside them."""
    if not links:
        return {}
    params = {"links": [x.link_id for x in links], "kinds": [x.target_kind for x in links],
              "targets": [x.target_id for x in links]}
    exact: dict[UUID, set[UUID]] = {x.link_id: set() for x in links}
    inside: dict[UUID, set[UUID]] = {x.link_id: set() for x in links}
    for r in _rows(conn, _PLACES, params):
        (exact if r["depth"] == 0 else inside)[r["link_id"]].add(r["place_id"])
    return {k: li.LinkPlaces(exact=frozenset(exact[k]), inside=frozenset(inside[k] - exact[k])) for k in exact}


def visits_of(conn: Any, campaign_id: UUID, person_ids: Iterable[UUID], known_at: datetime,
              since: datetime | None = None, until: datetime | None = None) -> dict[UUID, list[li.VisitFact]]:
    """Each person's visits (as a participant) recorded by `known_at`, optionally occurred in [since, until)."""
    people = list(person_ids)
    found: dict[UUID, list[li.VisitFact]] = {p: [] for p in people}
    if not people:
        return found
    rows = _rows(conn, """
        SELECT visit_id, place_id, participants, occurred_at, recorded_at, logged_by, problem_ids FROM liaison_visits
         WHERE campaign_id = %(campaign_id)s AND participants && %(people)s::uuid[] AND recorded_at <= %(known_at)s
           AND (%(since)s::timestamptz IS NULL OR occurred_at >= %(since)s)
           AND (%(until)s::timestamptz IS NULL OR occurred_at < %(until)s)
         ORDER BY occurred_at, visit_id""",
                 {"campaign_id": campaign_id, "people": people, "known_at": known_at, "since": since, "until": until})
    for r in rows:
        fact = li.VisitFact(visit_id=r["visit_id"], place_id=r["place_id"], participants=tuple(r["participants"]),
                            occurred_at=r["occurred_at"], recorded_at=r["recorded_at"], logged_by=r["logged_by"],
                            problem_ids=tuple(r["problem_ids"]))
        for p in set(fact.participants) & set(found):
            found[p].append(fact)
    return found


def duty_records(conn: Any, duty_ids: Iterable[UUID]) -> dict[UUID, Row]:
    ids = list(duty_ids)
    if not ids:
        return {}
    return {r["duty_id"]: r for r in _rows(conn, "SELECT d.*, w.level, w.steps_done, w.closed AS item_closed"
                                                 " FROM liaison_duties d LEFT JOIN work_items w"
                                                 " ON w.item_kind = 'liaison_duty' AND w.item_id = d.duty_id"
                                                 " WHERE d.duty_id = ANY(%s)", (ids,))}


# --- compliance ---------------------------------------------------------------------------------


@dataclass
class Judged:
    """Verdicts with the leaders they belong to (for names) and the duty records of those duties."""

    leaders: dict[UUID, Leader]
    verdicts: list[li.Verdict]
    last_visits: dict[UUID, li.CountedVisit | None]


def judge(conn: Any, campaign_id: UUID, calendar: WorkCalendar, as_of: datetime, *, person_id: UUID | None = None,
          place_id: UUID | None = None, first: date | None = None, last: date | None = None) -> Judged:
    """Every verdict of the selection at `as_of` from what was known then (periods within [first, last])."""
    timeline = li.PolicyTimeline(policy_versions(conn, campaign_id, as_of), calendar.tz)
    found = leaders(conn, campaign_id, as_of, person_id)
    if place_id is not None:
        for leader in found:
            leader.links = [x for x in leader.links if x.target_kind == "place" and x.target_id == place_id]
    found = [x for x in found if x.links]
    places = link_places(conn, [x for leader in found for x in leader.links])
    visits = visits_of(conn, campaign_id, [x.person_id for x in found], as_of)
    verdicts: list[li.Verdict] = []
    last_visits: dict[UUID, li.CountedVisit | None] = {}
    for leader in found:
        for link in leader.links:
            judged = li.judge_link(person_id=leader.person_id, link=link, timeline=timeline, places=places[link.link_id],
                                   exemptions=leader.exemptions, visits=visits[leader.person_id], calendar=calendar,
                                   now=as_of)
            last_visits[link.link_id] = li.last_visit(judged)
            verdicts += [v for v in judged if (first is None or v.period.end > first)
                         and (last is None or v.period.start <= last)]
    return Judged({x.person_id: x for x in found}, verdicts, last_visits)


def _names(conn: Any, place_ids: Iterable[UUID], unit_ids: Iterable[UUID]) -> dict[UUID, str]:
    rows = _rows(conn, "SELECT place_id AS id, name FROM structure_places WHERE place_id = ANY(%s)"
                       " UNION ALL SELECT unit_id, name FROM structure_units WHERE unit_id = ANY(%s)",
                 (list(set(place_ids)), list(set(unit_ids))))
    return {r["id"]: r["name"] for r in rows}


def _problems(conn: Any, problem_ids: Iterable[UUID]) -> dict[UUID, Row]:
    ids = list(set(problem_ids))
    if not ids:
        return {}
    rows = _rows(conn, "SELECT problem_id, state, category, place_id, deadline FROM ledger_problems"
                       " WHERE problem_id = ANY(%s)", (ids,))
    return {r["problem_id"]: r for r in rows}


def compliance(conn: Any, campaign_id: UUID, calendar: WorkCalendar, as_of: datetime, *,
               person_id: UUID | None = None, place_id: UUID | None = None, first: date | None = None,
               last: date | None = None, status: str | None = None) -> list[Row]:
    """Per leader × linked place × period at `as_of`: due, done, visits, last visit, days since, status,
    the policy version that judges it, problems found on those visits with their state, and the duty record."""
    judged = judge(conn, campaign_id, calendar, as_of, person_id=person_id, place_id=place_id, first=first, last=last)
    verdicts = [v for v in judged.verdicts if status is None or v.status == status]
    names = _names(conn, [v.target_id for v in verdicts] + [p.place_id for v in verdicts for p in v.visits],
                   [v.target_id for v in verdicts if v.target_kind == "unit"])
    problems = _problems(conn, [pid for v in verdicts for x in v.visits for pid in x.problem_ids])
    records = duty_records(conn, [v.duty_id for v in verdicts])
    return [verdict_row(v, judged.leaders[v.person_id], names, problems, records.get(v.duty_id),
                        judged.last_visits.get(v.link_id), as_of) for v in verdicts]


def verdict_row(v: li.Verdict, leader: Leader, names: dict[UUID, str], problems: dict[UUID, Row],
                record: Row | None, last: li.CountedVisit | None, as_of: datetime) -> Row:
    found = [{**problems[pid], "visit_id": x.visit_id} for x in v.visits for pid in x.problem_ids if pid in problems]
    return {
        "duty_id": v.duty_id, "person_id": v.person_id, "leader_name": leader.name, "body": leader.body,
        "body_zh": li.BODY_NAMES_ZH.get(leader.body, leader.body), "rank": leader.rank, "link_id": v.link_id,
        "target_kind": v.target_kind, "target_id": v.target_id, "target_name": names.get(v.target_id),
        "period_kind": v.period.kind, "period": v.period.label, "period_zh": v.period.label_zh,
        "period_start": v.period.start, "period_end": v.period.last_day, "due": v.due, "done": v.done,
        "done_on_time": v.done_on_time, "share": round(v.share, 4), "exempt_days": round(v.exempt_days, 2),
        "exemption_ids": list(v.exemption_ids), "status": v.status, "status_zh": li.STATUS_NAMES_ZH[v.status],
        "policy_version": v.policy_version, "policy_effective_from": v.policy_effective_from,
        "remind_at": v.remind_at, "judged_at": v.judged_at,
        "visits": [{"visit_id": x.visit_id, "place_id": x.place_id, "place_name": names.get(x.place_id),
                    "occurred_at": x.occurred_at, "recorded_at": x.recorded_at, "logged_by": x.logged_by,
                    "lead": x.lead, "recorded_late": x.late, "problem_ids": list(x.problem_ids)} for x in v.visits],
        "last_visit_at": last.occurred_at if last else None,
        "days_since_last_visit": (as_of - last.occurred_at).days if last and last.occurred_at <= as_of else None,
        "problems": found,
        "record": None if record is None else {
            "reminded_at": record["reminded_at"], "found_unmet_at": record["found_unmet_at"],
            "resolved_at": record["resolved_at"], "resolution": record["resolution"],
            "resolution_reason": record["resolution_reason"], "escalation_level": record["level"],
            "steps_done": sorted(record["steps_done"] or [])},
    }


def summary(rows: Sequence[Row]) -> Row:
    """Counts by status, and how many visits were due and done."""
    by = {s: sum(r["status"] == s for r in rows) for s in li.STATUS_NAMES_ZH}
    return {"rows": len(rows), "by_status": by, "due": sum(r["due"] for r in rows),
            "done": sum(min(r["done"], r["due"]) for r in rows)}


def linked_in_force(conn: Any, campaign_id: UUID, at: datetime) -> list[Row]:
    """The liaison leader of each place or unit at `at` (挂钩领导), with 班子 and rank."""
    return _rows(conn, """
        SELECT k.target_kind, k.target_id, COALESCE(sp.name, su.name) AS target_name, k.person_id, p.name AS leader_name,
               l.body, l.rank, k.link_id, k.valid_from, k.valid_to
          FROM liaison_links k JOIN liaison_leaders l USING (person_id)
          LEFT JOIN structure_persons p ON p.person_id = k.person_id
          LEFT JOIN structure_places sp ON k.target_kind = 'place' AND sp.place_id = k.target_id
          LEFT JOIN structure_units su ON k.target_kind = 'unit' AND su.unit_id = k.target_id
         WHERE k.campaign_id = %(campaign_id)s AND k.valid_from <= %(at)s AND %(at)s < COALESCE(k.valid_to, 'infinity')
         ORDER BY target_name NULLS LAST, k.target_id, leader_name NULLS LAST, k.person_id""",
                 {"campaign_id": campaign_id, "at": at})


def link_owner(conn: Any, link_id: UUID) -> UUID | None:
    """The leader a link id belongs to (None: unused)."""
    rows = _rows(conn, "SELECT person_id FROM liaison_links WHERE link_id = %s", (link_id,))
    return rows[0]["person_id"] if rows else None


def trail_rows(conn: Any, person_id: UUID, known_at: datetime) -> list[Row]:
    """The person's recorded trail entries up to `known_at`, in recording order, with actor names.

    Entries sort by when they were recorded, then by log position (so one instant's entries keep their order);
    a computed verdict sorts at its judgement instant, before anything recorded at that very instant.
    """
    return _rows(conn, """
        SELECT t.*, ap.name AS actor_person_name FROM liaison_trail t
          LEFT JOIN structure_persons ap ON ap.person_id = (t.actor->>'person_id')::uuid
         WHERE t.person_id = %s AND t.recorded_at <= %s ORDER BY t.notification_id, t.seq""", (person_id, known_at))


# --- a leader's own view ---------------------------------------------------------------------------

_CLOSED_PROBLEM_STATES = ("closed", "withdrawn", "merged")


def open_problems_at(conn: Any, places: Iterable[UUID], limit: int = 200) -> list[Row]:
    """Open problems at these places (the ledger's rows), oldest deadline first."""
    ids = list(set(places))
    if not ids:
        return []
    return _rows(conn, """
        SELECT p.problem_id, p.place_id, sp.name AS place_name, p.category, p.severity, p.state, p.deadline,
               p.unit_id, u.name AS unit_name, p.relapse_count
          FROM ledger_problems p LEFT JOIN structure_places sp ON sp.place_id = p.place_id
          LEFT JOIN structure_units u ON u.unit_id = p.unit_id
         WHERE p.place_id = ANY(%s) AND p.state <> ALL(%s)
         ORDER BY p.deadline NULLS LAST, p.problem_id LIMIT %s""", (ids, list(_CLOSED_PROBLEM_STATES), limit))


def leader_view(conn: Any, campaign_id: UUID, person_id: UUID, calendar: WorkCalendar, now: datetime) -> Row | None:
    """挂钩领导本人视图: linked places in force now with this period's status and what is due next, and the open
    problems at those places (and inside them). None when the person is not a leader of the campaign."""
    judged = judge(conn, campaign_id, calendar, now, person_id=person_id)
    found = leaders(conn, campaign_id, now, person_id)
    if not found:
        return None
    leader = found[0]
    current = li.links_in_force(leader.links, now)
    places = link_places(conn, current)
    names = _names(conn, [x.target_id for x in leader.links], [x.target_id for x in leader.links])
    by_link: dict[UUID, list[li.Verdict]] = {}
    for v in judged.verdicts:
        by_link.setdefault(v.link_id, []).append(v)
    links = []
    for link in current:
        verdicts = by_link.get(link.link_id, [])
        this = verdicts[-1] if verdicts else None
        last = judged.last_visits.get(link.link_id)
        links.append({
            "link_id": link.link_id, "target_kind": link.target_kind, "target_id": link.target_id,
            "target_name": names.get(link.target_id), "valid_from": link.valid_from, "valid_to": link.valid_to,
            "this_period": None if this is None else _period_brief(this, calendar),
            "due_next": None if this is None else _due_next(this, calendar),
            "last_visit_at": last.occurred_at if last else None,
            "days_since_last_visit": (now - last.occurred_at).days if last else None,
            "unmet_periods": sum(v.status == "unmet" for v in verdicts),
        })
    counted = {p for x in current for p in places[x.link_id].exact | places[x.link_id].inside}
    return {"person_id": leader.person_id, "name": leader.name, "body": leader.body,
            "body_zh": li.BODY_NAMES_ZH.get(leader.body, leader.body), "rank": leader.rank,
            "liaison_officer": None if leader.liaison_officer_id is None else {
                "person_id": leader.liaison_officer_id, "name": leader.officer_name},
            "links": links, "open_problems": open_problems_at(conn, counted),
            "exemptions": [x.model_dump() for x in leader.exemptions if not x.revoked]}


def _period_brief(v: li.Verdict, calendar: WorkCalendar) -> Row:
    return {"period": v.period.label, "period_zh": v.period.label_zh, "due": v.due, "done": v.done,
            "status": v.status, "status_zh": li.STATUS_NAMES_ZH[v.status], "ends_at": v.period.ends_at(calendar.tz),
            "remind_at": v.remind_at, "judged_at": v.judged_at, "policy_version": v.policy_version}


def _due_next(v: li.Verdict, calendar: WorkCalendar) -> Row:
    """What the leader still owes this period, or — when it is settled — that the next period owes from its start."""
    left = max(0, v.due - v.done)
    if left and v.status == "pending":
        return {"visits": left, "by": v.period.ends_at(calendar.tz), "period_zh": v.period.label_zh}
    return {"visits": 0, "by": v.period.ends_at(calendar.tz), "period_zh": v.period.label_zh,
            "next_period_starts": v.period.ends_at(calendar.tz)}


# --- the duty trail (履职轨迹) -----------------------------------------------------------------------

TRAIL_KINDS_ZH: dict[str, str] = {
    "designated": "确定挂钩领导", "linked": "建立挂钩联系", "link_ended": "结束挂钩联系", "exemption_granted": "免除履职",
    "exemption_revoked": "撤销免除", "visit": "督查", "reminded": "履职提醒", "found_unmet": "记录未履职",
    "resolved": "未履职办结", "escalation_step": "督办", "verdict": "周期判定", "policy_set": "履职规则",
}
RULE_ACTOR = {"person_id": None, "role": "rule", "name": "履职判定规则"}


def _t(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_local(value)


def describe(kind: str, d: Row, names: dict[UUID, str]) -> str:
    """The trail line of an entry, in Chinese, with names as they are now."""
    def name(key: str) -> str:
        value = d.get(key)
        return names.get(UUID(str(value)), "（未知）") if value else "（无）"

    if kind == "designated":
        officer = f"；联络员：{name('liaison_officer_id')}" if d.get("liaison_officer_id") else ""
        return f"确定为挂钩领导：{li.BODY_NAMES_ZH.get(d['body'], d['body'])}，{d['rank']}{officer}"
    if kind == "linked":
        until = f"至{_t(d['valid_to'])}" if d.get("valid_to") else "起"
        taken = "（交接接任）" if d.get("handover_from") else ""
        return f"建立挂钩联系：{name('target_id')}，自{_t(d['valid_from'])}{until}{taken}"
    if kind == "link_ended":
        handed = "（交接给接任领导）" if d.get("handover_to") else ""
        return f"结束挂钩联系：{name('target_id')}，至{_t(d['valid_to'])}{handed}"
    if kind == "exemption_granted":
        return f"免除履职（{li.EXEMPTION_NAMES_ZH.get(d['exemption_kind'], d['exemption_kind'])}）：{d['starts_on']}至{d['ends_on']}"
    if kind == "exemption_revoked":
        return "撤销免除履职"
    if kind == "visit":
        role = "带队" if d.get("lead") else "参加"
        return f"督查{name('place_id')}（{role}，发现问题{d.get('findings', 0)}个）"
    if kind == "reminded":
        return f"履职提醒：{d['period_zh']}{name('target_id')}应督查{d['due']}次，已记录{d['done']}次"
    if kind == "found_unmet":
        return f"{d['summary_zh']}（第{d['policy_version']}版规则判定）"
    if kind == "resolved":
        return f"未履职事项办结：{li.RESOLUTION_NAMES_ZH.get(d['resolution'], d['resolution'])}"
    if kind == "escalation_step":
        return f"督办：{STEP_NAMES_ZH.get(d['step_name'], d['step_name'])}（第{d['level']}级）"
    if kind == "verdict":
        return (f"{d['period_zh']}{name('target_id')}：{li.STATUS_NAMES_ZH[d['status']]}（应{d['due']}次，实{d['done']}次；"
                f"第{d['policy_version']}版规则）")
    if kind == "policy_set":
        return (f"履职规则第{d['version']}版：每{d['period_zh']}每点位{d['visits_per_place']}次，"
                f"宽限{d['grace_working_days']}个工作日，自{_t(d['effective_from'])}起")
    return kind


def trail(conn: Any, campaign_id: UUID, person_id: UUID, calendar: WorkCalendar, as_of: datetime) -> list[Row]:
    """履职轨迹: every recorded entry of the person (links, visits, exemptions, reminders, unmet records,
    resolutions, escalation steps), every judged period's verdict with the policy version that judged it, and
    the campaign's policy versions — each with actor, both times, reason and correlation/causation ids, in order."""
    entries = [_recorded(r) for r in trail_rows(conn, person_id, as_of)]
    judged = judge(conn, campaign_id, calendar, as_of, person_id=person_id)
    entries += [_verdict_entry(v) for v in judged.verdicts if li.is_judged(v)]
    if judged.leaders or entries:
        entries += _policy_entries(conn, campaign_id, as_of)
    ids = {UUID(str(v)) for e in entries for k, v in e["details"].items()
           if v and k in ("target_id", "place_id", "liaison_officer_id")}
    names = _names(conn, ids, ids) | _person_names(conn, ids)
    for e in entries:
        e["summary_zh"] = describe(e["entry_kind"], e["details"], names)
        e["entry_kind_zh"] = TRAIL_KINDS_ZH.get(e["entry_kind"], e["entry_kind"])
    return sorted(entries, key=lambda e: (e["at"], e["order"]))


def _person_names(conn: Any, ids: Iterable[UUID]) -> dict[UUID, str]:
    rows = _rows(conn, "SELECT person_id AS id, name FROM structure_persons WHERE person_id = ANY(%s)", (list(ids),))
    return {r["id"]: r["name"] for r in rows}


def _recorded(r: Row) -> Row:
    actor = dict(r["actor"])
    if r.get("actor_person_name") and not actor.get("name"):
        actor["name"] = r["actor_person_name"]
    return {"at": r["recorded_at"], "order": (r["notification_id"], r["seq"]), "entry_kind": r["entry_kind"],
            "event_type": r["event_type"], "subject_id": r["subject_id"], "occurred_at": r["occurred_at"],
            "recorded_at": r["recorded_at"], "actor": actor, "reason": r["reason"],
            "correlation_id": r["correlation_id"], "causation_id": r["causation_id"], "command_id": r["command_id"],
            "details": r["details"]}


def _verdict_entry(v: li.Verdict) -> Row:
    details = {"period": v.period.label, "period_zh": v.period.label_zh, "target_id": str(v.target_id),
               "link_id": str(v.link_id), "due": v.due, "done": v.done, "done_on_time": v.done_on_time,
               "status": v.status, "policy_version": v.policy_version,
               "policy_effective_from": v.policy_effective_from.isoformat(),
               "visit_ids": [str(x.visit_id) for x in v.visits]}
    return {"at": v.judged_at, "order": (0, 0), "entry_kind": "verdict", "event_type": None, "subject_id": v.duty_id,
            "occurred_at": v.judged_at, "recorded_at": None, "actor": {**RULE_ACTOR,
                                                                        "name": f"履职判定规则（第{v.policy_version}版）"},
            "reason": None, "correlation_id": None, "causation_id": None, "command_id": None, "details": details}


def _policy_entries(conn: Any, campaign_id: UUID, as_of: datetime) -> list[Row]:
    rows = _rows(conn, "SELECT * FROM liaison_policy_versions WHERE campaign_id = %s AND recorded_at <= %s"
                       " ORDER BY version", (campaign_id, as_of))
    return [{"at": r["recorded_at"], "order": (r["notification_id"], 0), "entry_kind": "policy_set",
             "event_type": r["event_type"], "subject_id": None, "occurred_at": r["recorded_at"],
             "recorded_at": r["recorded_at"], "actor": r["actor"], "reason": r["reason"],
             "correlation_id": r["correlation_id"], "causation_id": r["causation_id"], "command_id": r["command_id"],
             "details": {**r["rules"], "version": r["version"], "effective_from": r["effective_from"].isoformat(),
                         "period_zh": PERIOD_NAMES_ZH[r["rules"]["period"]]}} for r in rows]


TRAIL_CSV_COLUMNS = ("时间", "发生时间", "记录时间", "类型", "摘要", "操作人", "角色", "理由", "event_type", "subject_id",
                     "correlation_id", "causation_id", "command_id")


def trail_csv_rows(entries: Iterable[Row]) -> list[list[str]]:
    """The trail as CSV cells (Beijing time), one line per entry."""
    def cell(value: Any) -> str:
        if value is None:
            return ""
        return _t(value) if isinstance(value, datetime) else str(value)

    return [[cell(e["at"]), cell(e["occurred_at"]), cell(e["recorded_at"]), e["entry_kind_zh"], e["summary_zh"],
             e["actor"].get("name") or "", e["actor"].get("role") or "", e["reason"] or "", e["event_type"] or "",
             cell(e["subject_id"]), cell(e["correlation_id"]), cell(e["causation_id"]), e["command_id"] or ""]
            for e in entries]


def listing_leaders(conn: Any, person_ids: Iterable[UUID]) -> dict[UUID, Row]:
    """Name, rank and the count of unmet periods on record (not later met or excused) of each leader."""
    ids = list(set(person_ids))
    if not ids:
        return {}
    rows = _rows(conn, """
        SELECT l.person_id, p.name, l.rank,
               (SELECT count(*) FROM liaison_duties d WHERE d.person_id = l.person_id AND d.found_unmet_at IS NOT NULL
                   AND (d.resolution IS NULL OR d.resolution = 'closed_by_hq')) AS unmet_periods
          FROM liaison_leaders l LEFT JOIN structure_persons p ON p.person_id = l.person_id
         WHERE l.person_id = ANY(%s)""", (ids,))
    return {r["person_id"]: r for r in rows}
