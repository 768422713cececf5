"""Cross-campaign writes (跨创建活动) over HTTP: the campaign of a command is the campaign of what it acts on.

Two campaigns, A and B, each with HQ, two units, grids and a reported problem. An `hq_office`
token bound to A must not reach into B — not by naming B in the body (403 campaign_not_allowed),
nor by naming A while pointing at B's units, problems or cases (422 cross_campaign_reference) —
and nothing may be written when it tries. References that exist nowhere are 404. This is the
reproduction of issue 9, defect 4: each of these was 201 before.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain import problem as pr
from infra.bootstrap import bootstrap
from infra.http import create_app
from infra.http.auth import create_token
from tests.support.problem_world import World, build_world

pytestmark = pytest.mark.integration


@dataclass
class Two:
    """Campaigns A and B (each a problem world with one reported problem), a client, and A's HQ token."""

    a: World
    b: World
    client: TestClient
    hq_a: dict[str, str]

    def post(self, name: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.client.post(f"/commands/{name}", json={"command_id": str(uuid4()), **body},
                                headers=headers or self.hq_a)

    def log_head(self) -> int:
        return self.a.log_head()


def report(w: World) -> UUID:
    w.send("supervisor", pr.ReportProblem, problem_id=w["p"], campaign_id=w.campaign_id, category="clutter",
           place_id=w["s1"], description="占道经营", source="hotline")
    return w["p"]


def token(w: World, role: str = "hq_office", campaign_id: UUID | None = None, who: str = "hq") -> dict[str, str]:
    person = w.actors[who].person_id if who in w.actors else None
    with psycopg.connect(w.system.database_url) as conn:
        return {"Authorization": f"Bearer {create_token(conn, role, person_id=person, campaign_id=campaign_id)}"}


@pytest.fixture
def two(database_url: str, clock: Any) -> Iterator[Two]:
    system = bootstrap(database_url, clock=clock)
    a, b = build_world(system), build_world(system)
    report(a), report(b)
    with TestClient(create_app(system), raise_server_exceptions=False) as client:
        yield Two(a, b, client, token(a, campaign_id=a.campaign_id))
    system.close()


def unit(w: World, name: str = "unit_a") -> dict[str, str]:
    return {"party_kind": "unit", "party_id": str(w[name])}


def basis(w: World) -> list[dict[str, str]]:
    return [{"kind": "problem", "id": str(w["p"])}]


def case_body(w: World, campaign: World) -> dict[str, Any]:
    return {"case_id": str(uuid4()), "campaign_id": str(campaign.campaign_id), "subject": unit(w),
            "reason_zh": "逾期未整改", "basis": basis(w)}


def notice_body(w: World, campaign: World) -> dict[str, Any]:
    return {"notice_id": str(uuid4()), "campaign_id": str(campaign.campaign_id), "notice_kind": "urge",
            "subject_kind": "problem", "subject_id": str(w["p"]), "recipients": [unit(w)],
            "text_zh": "请立即整改"}


def refused(two: Two, response: Any, status: int, code: str, head: int) -> None:
    assert (response.status_code, response.json()["code"]) == (status, code), response.json()
    assert two.log_head() == head, "a refused command wrote events"


def test_a_token_of_campaign_a_cannot_open_a_case_in_campaign_b(two: Two) -> None:
    """open_accountability_case naming B, against B's unit, with an A-bound token: 403 campaign_not_allowed."""
    head = two.log_head()
    refused(two, two.post("open_accountability_case", case_body(two.b, two.b)), 403, "campaign_not_allowed", head)


def test_a_token_of_campaign_a_cannot_issue_a_notice_to_campaign_b(two: Two) -> None:
    """issue_notice about B's problem to B's unit, naming B: 403, and no notice (so no SMS/WeChat) is issued."""
    head = two.log_head()
    refused(two, two.post("issue_notice", notice_body(two.b, two.b)), 403, "campaign_not_allowed", head)


def test_a_token_of_campaign_a_cannot_propose_accountability_in_campaign_b(two: Two) -> None:
    """propose_accountability against B's unit, naming B: 403 campaign_not_allowed."""
    head = two.log_head()
    refused(two, two.post("propose_accountability", case_body(two.b, two.b)), 403, "campaign_not_allowed", head)


@pytest.mark.parametrize("command, body", [
    ("open_accountability_case", case_body),
    ("propose_accountability", case_body),
    ("issue_notice", notice_body),
])
def test_naming_campaign_a_while_pointing_at_b_is_a_cross_campaign_reference(two: Two, command: str, body: Any) -> None:
    """The body names A (the token's campaign) but its subject, basis or recipients are B's: 422 cross_campaign_reference."""
    head = two.log_head()
    response = two.post(command, body(two.b, two.a))
    refused(two, response, 422, "cross_campaign_reference", head)
    assert response.json()["details"]["campaign_id"] == str(two.a.campaign_id)


def test_an_existing_case_of_b_belongs_to_b_whatever_campaign_the_body_names(two: Two) -> None:
    """A case proposed in B, opened with a body naming A by an A-bound token: 403 (the case's campaign is B's)."""
    case = case_body(two.b, two.b)
    unbound = token(two.b, role="discipline", who="hq")
    assert two.post("propose_accountability", case, unbound).status_code == 201
    head = two.log_head()
    response = two.post("open_accountability_case", {"case_id": case["case_id"], "campaign_id": str(two.a.campaign_id)})
    refused(two, response, 403, "campaign_not_allowed", head)


def test_a_problem_of_b_cannot_be_acted_on_by_a_token_of_a(two: Two) -> None:
    """Commands with no campaign in the body take the problem's: parking B's problem with an A token is 403."""
    head = two.log_head()
    refused(two, two.post("park_problem", {"problem_id": str(two.b["p"]), "reason": "待协调"}), 403,
            "campaign_not_allowed", head)


def test_an_unbound_token_still_cannot_mix_campaigns(two: Two) -> None:
    """Even an admin token bound to no campaign cannot hand A's problem to B's unit: 422 cross_campaign_reference."""
    admin = token(two.a, role="admin", who="nobody")
    head = two.log_head()
    response = two.post("assign_problem", {"problem_id": str(two.a["p"]), "unit_id": str(two.b["unit_b"]),
                                           "reason": "交办"}, admin)
    refused(two, response, 422, "cross_campaign_reference", head)


def test_a_reference_to_nothing_is_404(two: Two) -> None:
    """A notice to a unit that exists in no campaign: 404 unit_not_found, nothing written."""
    body = {**notice_body(two.a, two.a), "recipients": [{"party_kind": "unit", "party_id": str(uuid4())}]}
    head = two.log_head()
    refused(two, two.post("issue_notice", body), 404, "unit_not_found", head)


def test_within_its_campaign_the_bound_token_still_works(two: Two) -> None:
    """The same notice inside A, about A's problem, to A's unit: 201."""
    assert two.post("issue_notice", notice_body(two.a, two.a)).status_code == 201
