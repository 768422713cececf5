"""One time convention over the whole API (issue 12, item 2), checked from the app's own route table.

Every GET route either takes `as_of` — and then it is called at two instants of a campaign's history and must
answer for the instant asked (echoing it, in the one timestamp form) and answer differently at the other — or is
named in TIMELESS with the reason it reads no clock. A new GET route that does neither fails here, so none can
skip the convention. Every instant in every JSON body is ISO 8601 with the campaign zone's offset (+08:00): never
`Z`, never another offset. A `+` a client forgot to encode (a space before two digits) is read as the `+`, and
`now`, the ledger's and the problem view's former name, is a deprecated alias answering with `Deprecation: true`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote
from uuid import UUID

import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient

from domain.consequences import accountability as ac
from domain.consequences import bulletin as bu
from domain.consequences import summons as su
from domain.escalation.ladder import step_id_for
from domain.escalation.notice import Party
from domain.liaison.judgement import duty_id_for
from domain.liaison.links import liaison_id_for
from domain.policy.campaign import policy_id_for
from domain.policy.commands import SetLateEntryWindow
from domain.problem.assignment_notice import assignment_notice_id
from domain.structure.indicator import DefineIndicator
from domain.tasks import DefineTask
from infra.bootstrap import bootstrap
from infra.clock import SimulatedClock
from infra.escalator.engine import Escalator
from infra.http import create_app
from infra.http.auth import create_token
from tests.support.databases import Databases
from tests.support.escalation_kit import at, report_and_assign
from tests.support.liaison_kit import liaison_world, log_visit, run_every
from tests.support.problem_world import World

pytestmark = pytest.mark.integration

# GET routes that read no clock, each with why: the current structure or a list of records, a period given
# explicitly (since/until, from), a file, the operator's views. Anything else must take `as_of`.
TIMELESS: dict[str, str] = {
    "/health": "the connections' state now; an operator's probe",
    "/metrics": "process figures for Prometheus; an operator's probe",
    "/campaigns/{campaign_id}/units": "the structure as it stands (as of a time: /units/{id}?as_of=)",
    "/campaigns/{campaign_id}/places": "the structure as it stands (as of a time: /places/{id}?as_of=)",
    "/campaigns/{campaign_id}/persons": "the structure as it stands (as of a time: /persons/{id}?as_of=)",
    "/campaigns/{campaign_id}/escalation_replay": "replays a period given by since/until",
    "/accountability_cases/{case_id}/escalation_replay": "replays the case's whole basis",
    "/accountability_cases/{case_id}/dossier": "the dossier of a case, replayed to its last event",
    "/audit/chain": "the hash chain's state; an operator's check",
    "/campaigns/{campaign_id}/calendar/deadline": "counts from the instant given as `from`",
    "/drill/clock": "the clock itself",
    "/campaigns/{campaign_id}/bulletins": "the issued bulletins, each dated",
    "/campaigns/{campaign_id}/notices": "the notices, each dated, and whether signed",
    "/campaigns/{campaign_id}/summons": "the summons, each dated",
    "/campaigns/{campaign_id}/accountability_cases": "the cases, each dated",
    "/evidence/{sha256}": "a stored photo",
    "/tokens": "the tokens an operator manages",
    "/tasks/{task_id}/timeline": "every event of the task, each dated",
    "/imports/tasks/template.xlsx": "a blank template",
}
TRAIL = re.compile(r"^/[a-z_]+/\{entity_id\}/trail$")  # every event touching an entity, by since/until
INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
EARLY, LATE = at("2021-12-23", "10:00"), at("2022-01-06", "10:00")
# Bodies' bookkeeping, not their answer: how far the read models were, and when the request was made.
VOLATILE = {"projection_position", "log_head"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Routes whose answer rightly stays the same at both instants of this history, each with why.
SAME_AT_BOTH: dict[str, str] = {
    "/campaigns/{campaign_id}/calendar": "the 2021 calendar's days were the same on both dates",
}


@dataclass
class History:
    world: World
    client: TestClient
    headers: dict[str, str]
    ids: dict[str, UUID]


@pytest.fixture(scope="module")
def history(databases: Databases) -> Iterator[History]:
    """A campaign from 20 Dec 2021 to 10 Jan 2022: leaders linked and visiting, problems handed over and overdue, the
    escalator run every 3 hours (steps, notices, duty records), a task and indicator, a bulletin, a summons and a case
    proposed, and a policy version — so that what a route answers on 23 Dec differs from 6 Jan."""
    clock = SimulatedClock(at("2021-12-20", "09:00"))
    system = bootstrap(databases.clone("asof"), clock=clock)
    w = liaison_world(system)
    ids: dict[str, UUID] = {"problem": report_and_assign(w, "s1", "人行道垃圾堆积")}
    ids["visit"] = log_visit(w, "li", "road1", at("2021-12-20", "08:00"))
    w.send("hq", DefineIndicator, indicator_id=w["indicator"], campaign_id=w.campaign_id, code="1.1", name="市容环境")
    w.send("hq", DefineTask, task_id=w["task"], campaign_id=w.campaign_id, name="背街小巷整治",
           indicator_id=w["indicator"], lead_unit_id=w["unit_a"])
    unit_b = Party(party_kind="unit", party_id=w["unit_b"])
    basis = (ac.BasisRef(kind="problem", id=ids["problem"]),)
    w.send("hq", su.ProposeSummons, summons_id=w["summons"], campaign_id=w.campaign_id, subject=unit_b,
           convener="hq", reason_zh="逾期", basis=basis)
    w.send("hq", ac.ProposeAccountability, case_id=w["case"], campaign_id=w.campaign_id, subject=unit_b,
           reason_zh="逾期", basis=basis)
    w.send("hq", bu.DraftBulletin, bulletin_id=w["bulletin"], campaign_id=w.campaign_id,
           period_start=date(2021, 12, 20), period_end=date(2021, 12, 26), title="第一期通报", body_zh="通报内容")
    run_every(Escalator.for_system(system), clock, at("2022-01-10", "09:00"), actions={
        at("2021-12-28"): lambda: w.send("hq", SetLateEntryWindow, campaign_id=w.campaign_id, days=10),
        at("2022-01-04"): lambda: ids.setdefault("late", report_and_assign(w, "s3", "又见垃圾")),
    })
    w.catch_up()
    ids.update(campaign=w.campaign_id, unit=w["unit_a"], place=w["road1"], person=w["li"], indicator=w["indicator"],
               task=w["task"], bulletin=w["bulletin"], summons=w["summons"], case=w["case"],
               notice=assignment_notice_id(ids["problem"], w["unit_a"], 0),
               step=step_id_for("problem", ids["problem"], "urge"), policy=policy_id_for(w.campaign_id),
               duty=duty_id_for(w["link:wang:road2"], date(2021, 12, 1)), liaison=liaison_id_for(w["li"]))
    with psycopg.connect(system.database_url) as conn:
        token = create_token(conn, "admin", name="管理员")
    with TestClient(create_app(system), raise_server_exceptions=False) as client:
        yield History(w, client, {"Authorization": f"Bearer {token}"}, ids)
    system.close()


ENTITY_OF_SEGMENT = {"campaigns": "campaign", "units": "unit", "places": "place", "persons": "person",
                     "indicators": "indicator", "tasks": "task", "problems": "problem", "visits": "visit",
                     "notices": "notice", "bulletins": "bulletin", "summons": "summons",
                     "accountability_cases": "case", "escalation_steps": "step", "liaisons": "liaison",
                     "liaison_duties": "duty", "policies": "policy"}
PARAM_ENTITY = {"campaign_id": "campaign", "person_id": "person", "place_id": "place", "problem_id": "problem",
                "visit_id": "visit", "task_id": "task", "case_id": "case"}
REQUIRED_QUERY = {"/campaigns/{campaign_id}/bulletins/draft": {"period_start": "2021-12-20", "period_end": "2022-01-09"},
                  "/campaigns/{campaign_id}/calendar": {"year": "2021"}}


def get_routes(h: History) -> dict[str, list[str]]:
    """Every GET route of the app and its query parameters, from the app's own OpenAPI document."""
    spec = h.client.get("/openapi.json").json()
    return {path: [p["name"] for p in ops["get"].get("parameters", []) if p["in"] == "query"]
            for path, ops in spec["paths"].items() if "get" in ops}


def url_of(path: str, h: History) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        entity = ENTITY_OF_SEGMENT[path.split("/")[1]] if name == "entity_id" else PARAM_ENTITY[name]
        return str(h.ids[entity])

    return re.sub(r"\{([a-z_]+)\}", fill, path)


def as_of_routes(h: History) -> list[str]:
    return sorted(path for path, query in get_routes(h).items() if "as_of" in query)


def read(h: History, path: str, as_of: str, raw: bool = False) -> Any:
    """GET the route at `as_of`; `raw`: the instant put in the URL exactly as given (not percent-encoded)."""
    params = REQUIRED_QUERY.get(path, {})
    query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
    value = as_of if raw else quote(as_of)
    response = h.client.get(f"{url_of(path, h)}?as_of={value}" + (f"&{query}" if query else ""), headers=h.headers)
    not_yet = response.status_code == 404 and response.json()["details"].get("as_of") is not None
    assert response.status_code == 200 or not_yet, f"{path} at {as_of}: {response.status_code} {response.text[:300]}"
    return response


def echoed(response: Any) -> Any:
    """The instant a JSON answer says it is for: its `as_of`, or — an entity not recorded yet then (404) — its
    error's `details.as_of`."""
    body = response.json()
    return body["details"]["as_of"] if response.status_code == 404 else body.get("as_of")


def answer(response: Any) -> Any:
    """The response's content without its bookkeeping (read-model positions; a workbook's zip timestamps)."""
    if response.headers["content-type"].startswith(XLSX):
        sheets = openpyxl.load_workbook(io.BytesIO(response.content)).worksheets
        return [[list(row) for row in sheet.iter_rows(values_only=True)] for sheet in sheets]
    if not response.headers["content-type"].startswith("application/json"):
        return response.content
    body = response.json()
    return {k: v for k, v in body.items() if k not in VOLATILE} if isinstance(body, dict) else body


def instants(value: Any) -> Iterator[str]:
    if isinstance(value, str) and INSTANT.match(value):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from instants(v)
    elif isinstance(value, list):
        for v in value:
            yield from instants(v)


def test_every_get_route_takes_as_of_or_says_why_it_reads_no_clock(history: History) -> None:
    """A GET route without `as_of` is named in TIMELESS (or is a trail, by since/until); none is listed there needlessly."""
    routes = get_routes(history)
    missing = sorted(p for p, q in routes.items() if "as_of" not in q and p not in TIMELESS and not TRAIL.match(p))
    stale = sorted(p for p in TIMELESS if p not in routes or "as_of" in routes[p])
    assert (missing, stale) == ([], [])


def test_each_as_of_route_answers_for_the_instant_asked(history: History) -> None:
    """Each route with as_of, at 23 Dec and at 6 Jan: 200 (or 404 for an entity not recorded yet then, saying so); a
    JSON body echoes the instant asked as +08:00; the two answers differ (unless SAME_AT_BOTH says why not)."""
    checked, same = [], []
    for path in as_of_routes(history):
        early, late = read(history, path, EARLY.isoformat()), read(history, path, LATE.isoformat())
        if early.headers["content-type"].startswith("application/json"):
            assert echoed(early) == EARLY.isoformat() and echoed(late) == LATE.isoformat(), (
                f"{path} echoes {echoed(early)!r}, {echoed(late)!r}")
        if answer(early) == answer(late) and path not in SAME_AT_BOTH:
            same.append(path)
        checked.append(path)
    assert same == [] and len(checked) >= 40, same


def test_an_offset_whose_plus_was_not_encoded_reads_as_the_plus(history: History) -> None:
    """`?as_of=2021-12-23T10:00:00 08:00` (the `+` sent raw, so a space) answers exactly as the encoded `+08:00`."""
    for path in as_of_routes(history):
        encoded = read(history, path, EARLY.isoformat())
        raw = read(history, path, EARLY.isoformat(), raw=True)
        assert answer(raw) == answer(encoded), path


def test_every_instant_in_every_json_body_carries_the_campaigns_offset(history: History) -> None:
    """No `Z` and no other offset in any JSON body of any as_of route: every instant is ISO 8601 with +08:00."""
    wrong = {path: sorted({t for t in instants(answer(read(history, path, LATE.isoformat())))
                           if not t.endswith("+08:00")})[:3]
             for path in as_of_routes(history)
             if read(history, path, LATE.isoformat()).headers["content-type"].startswith("application/json")}
    assert {p: w for p, w in wrong.items() if w} == {}


def test_now_is_a_deprecated_alias_of_as_of(history: History) -> None:
    """The ledger and the problem view read `now` as `as_of`, say it is deprecated, and refuse the two disagreeing."""
    h = history
    for path in ("/campaigns/{campaign_id}/ledger", "/problems/{problem_id}"):
        url = url_of(path, h)
        new = h.client.get(url, params={"as_of": EARLY.isoformat()}, headers=h.headers)
        old = h.client.get(url, params={"now": EARLY.isoformat()}, headers=h.headers)
        assert old.status_code == 200 and old.headers.get("deprecation") == "true" and "deprecation" not in new.headers
        assert answer(old) == answer(new)
        both = h.client.get(url, params={"now": EARLY.isoformat(), "as_of": LATE.isoformat()}, headers=h.headers)
        assert (both.status_code, both.json()["code"]) == (422, "as_of_conflict")


def test_the_escalation_list_and_the_bulletin_draft_honour_as_of(history: History) -> None:
    """On 23 Dec the first problem was not yet overdue; on 6 Jan it is, and the draft lists what was at level 3 then."""
    h = history
    url = url_of("/campaigns/{campaign_id}/escalations", h)
    early = h.client.get(url, params={"as_of": EARLY.isoformat()}, headers=h.headers).json()
    late = h.client.get(url, params={"as_of": LATE.isoformat()}, headers=h.headers).json()
    assert early["as_of"] == EARLY.isoformat() and late["as_of"] == LATE.isoformat()
    assert early["rows"] != late["rows"]
    draft = url_of("/campaigns/{campaign_id}/bulletins/draft", h)
    period = {"period_start": "2021-12-20", "period_end": "2022-01-09"}
    before = h.client.get(draft, params={**period, "as_of": at("2021-12-21").isoformat()}, headers=h.headers).json()
    after = h.client.get(draft, params={**period, "as_of": LATE.isoformat()}, headers=h.headers).json()
    assert before != after


def test_the_one_time_form_holds_in_the_problem_view_that_mixed_z_and_plus_eight(history: History) -> None:
    """GET /problems/{id} used to mix `...Z` (the folded state) with `+08:00` (its clock): now every instant is +08:00."""
    h = history
    body = h.client.get(url_of("/problems/{problem_id}", h), headers=h.headers).json()
    found = list(instants(body))
    assert found and all(t.endswith("+08:00") for t in found), [t for t in found if not t.endswith("+08:00")][:3]
    assigned = next(t for t in body["timeline"] if t["event_type"] == "ProblemAssigned")
    assert body["problem"]["assigned_at"] == assigned["recorded_at"], "one instant, one spelling"
