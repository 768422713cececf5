"""The problem loop over HTTP against real PostgreSQL: evidence uploads, visits, lifecycle errors, ledger and exports.

Evidence (证据照片) is uploaded to a campaign and may be cited only there, as uploaded (issue 9: a
rectification citing a photo never uploaded used to be accepted); a photo is served only to a token
that may read a campaign it was uploaded to, never sniffed, inline under its hash.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import openpyxl
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from domain.problem.events import MAX_EVIDENCE_BYTES, EvidenceRef
from infra.http import create_app
from infra.http.auth import create_token
from infra.http.routes_problems import router
from infra.bootstrap import bootstrap
from infra.store.uploads import EvidenceStore, record_evidence
from tests.support.problem_world import PNG, World, build_world

pytestmark = pytest.mark.integration


@pytest.fixture
def world(database_url: str, clock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock)
    yield build_world(system)
    system.close()


def problem_app(world: World, uploads: Path, max_body_bytes: int = 64 * 1024 * 1024) -> FastAPI:
    """The real app with this router included (if the app does not include it yet) and a test photo store."""
    app = create_app(world.system, max_body_bytes=max_body_bytes)
    if not any(getattr(r, "path", None) == "/evidence" for r in app.routes):
        app.include_router(router)
    app.state.evidence_store = EvidenceStore(uploads)
    return app


@pytest.fixture
def client(world: World, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(problem_app(world, tmp_path / "uploads"), raise_server_exceptions=False) as c:
        yield c


def auth(world: World, who: str, campaign_id: Any = None) -> dict[str, str]:
    actor = world.actors[who]
    with psycopg.connect(world.system.database_url) as conn:
        token = create_token(conn, actor.role, person_id=actor.person_id, name=actor.name, campaign_id=campaign_id)
    return {"Authorization": f"Bearer {token}"}


def upload(world: World, client: TestClient, headers: dict[str, str], data: bytes, name: str = "photo.jpg",
           campaign_id: Any = "world") -> Any:
    """POST /evidence as evidence in the world's campaign (or `campaign_id`; None: name none)."""
    campaign = world.campaign_id if campaign_id == "world" else campaign_id
    form = {"campaign_id": str(campaign)} if campaign is not None else {}
    return client.post("/evidence", files={"file": (name, data, "image/jpeg")}, data=form, headers=headers)


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_an_image_is_stored_once_by_its_hash_and_served_back(world: World, client: TestClient, tmp_path: Path) -> None:
    """A PNG upload returns {sha256, media_type, size}; the same bytes again make no second file; GET serves it."""
    headers = auth(world, "supervisor")
    first, second = upload(world, client, headers, PNG), upload(world, client, headers, PNG, "again.png")
    assert first.status_code == 201 and first.json() == second.json()
    ref = first.json()
    assert (ref["media_type"], ref["size"]) == ("image/png", len(PNG))
    assert stored_files(tmp_path / "uploads") == [tmp_path / "uploads" / ref["sha256"][:2] / ref["sha256"][2:]]
    got = client.get(f"/evidence/{ref['sha256']}", headers=headers)
    assert got.status_code == 200 and got.content == PNG and got.headers["content-type"] == "image/png"


def test_a_file_that_is_not_an_image_is_refused_with_415_and_nothing_is_stored(world: World, client: TestClient,
                                                                             tmp_path: Path) -> None:
    """A PDF named .jpg and sent as image/jpeg is judged by its bytes: 415 unsupported_media_type."""
    response = upload(world, client, auth(world, "supervisor"), b"%PDF-1.7\n" + b"0" * 100)
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert set(response.json()) == {"code", "message_zh", "message_en", "details"}
    assert stored_files(tmp_path / "uploads") == []


def test_an_image_over_the_size_limit_is_refused_with_413_and_nothing_is_stored(world: World, client: TestClient,
                                                                              tmp_path: Path) -> None:
    """A JPEG one byte over MAX_EVIDENCE_BYTES is a 413 payload_too_large."""
    big = b"\xff\xd8\xff\xe0" + b"\0" * (MAX_EVIDENCE_BYTES - 3)
    response = upload(world, client, auth(world, "supervisor"), big)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert stored_files(tmp_path / "uploads") == []


def finding(world: World, i: int, ref: dict[str, Any]) -> dict[str, Any]:
    return {"problem_id": str(uuid4()), "category": ("sanitation", "clutter", "vehicle_parking")[i % 3],
            "description": f"第{i + 1}处问题", "evidence": [ref], "place_id": str(world[f"s{i % 2 + 1}"])}


def visit_body(world: World, findings: list[dict[str, Any]]) -> dict[str, Any]:
    occurred = (world.system.clock() - timedelta(hours=2)).isoformat()
    return {"command_id": str(uuid4()), "occurred_at": occurred, "visit_id": str(uuid4()),
            "campaign_id": str(world.campaign_id), "place_id": str(world["grid1"]),
            "participants": [str(world["supervisor"])], "findings": findings,
            "checklist": [{"item": "门前三包", "result": "fail"}]}


def test_a_visit_with_ten_findings_logged_over_http_fills_the_ledger(world: World, client: TestClient) -> None:
    """One POST logs the visit and its 10 problems; the ledger, the problem view and both exports show them."""
    headers = auth(world, "supervisor")
    ref = upload(world, client, headers, PNG).json()
    body = visit_body(world, [finding(world, i, ref) for i in range(10)])
    response = client.post("/commands/log_visit", json=body, headers=headers)
    assert response.status_code == 201 and len(response.json()["events"]) == 11
    world.catch_up()
    ledger = client.get(f"/campaigns/{world.campaign_id}/ledger", headers=headers).json()
    assert len(ledger["rows"]) == 10 and {r["grid_name"] for r in ledger["rows"]} == {"grid1"}
    pid = body["findings"][0]["problem_id"]
    problem = client.get(f"/problems/{pid}", headers=headers).json()
    assert problem["problem"]["state"] == "reported" and problem["timeline"][0]["event_type"] == "ProblemReported"
    csv_response = client.get(f"/campaigns/{world.campaign_id}/ledger.csv", headers=headers)
    assert csv_response.headers["content-type"].startswith("text/csv") and csv_response.content[:3] == b"\xef\xbb\xbf"
    assert len(list(csv.reader(io.StringIO(csv_response.content.decode("utf-8-sig"))))) == 11
    xlsx = client.get(f"/campaigns/{world.campaign_id}/ledger.xlsx", headers=headers)
    assert openpyxl.load_workbook(io.BytesIO(xlsx.content)).active.max_row == 11
    progress = client.get(f"/campaigns/{world.campaign_id}/grids/progress", headers=headers).json()["rows"]
    assert [(g["grid_name"], g["total"], g["open"]) for g in progress] == [("grid1", 10, 10), ("grid2", 0, 0)]


def test_a_report_at_an_unknown_place_is_a_404_and_writes_nothing(world: World, client: TestClient) -> None:
    """POST report_problem naming a place that does not exist: 404 place_not_found, log unchanged."""
    head = world.log_head()
    body = {"command_id": str(uuid4()), "problem_id": str(uuid4()), "campaign_id": str(world.campaign_id),
            "category": "sanitation", "place_id": str(uuid4()), "description": "x", "source": "hotline"}
    response = client.post("/commands/report_problem", json=body, headers=auth(world, "supervisor"))
    assert response.status_code == 404 and response.json()["code"] == "place_not_found"
    assert world.log_head() == head


def test_a_transition_from_the_wrong_state_is_a_409_and_writes_nothing(world: World, client: TestClient) -> None:
    """Acknowledging a problem that was never assigned: 409 invalid_transition naming the state, log unchanged."""
    photo = EvidenceRef(sha256="a" * 64, media_type="image/png", size=10)
    world.upload((photo,))
    body = visit_body(world, [finding(world, 0, photo.model_dump())])
    assert client.post("/commands/log_visit", json=body, headers=auth(world, "supervisor")).status_code == 201
    head = world.log_head()
    ack = {"command_id": str(uuid4()), "problem_id": body["findings"][0]["problem_id"]}
    response = client.post("/commands/acknowledge_problem", json=ack, headers=auth(world, "officer_a"))
    assert response.status_code == 409 and response.json()["code"] == "invalid_transition"
    assert response.json()["details"]["state"] == "reported" and world.log_head() == head


def test_the_ledger_reads_the_clock_at_the_given_now(world: World, client: TestClient) -> None:
    """`now` past the deadline turns an assigned problem red on the ledger route."""
    headers = auth(world, "hq")
    photo = EvidenceRef(sha256="b" * 64, media_type="image/png", size=10)
    world.upload((photo,))
    body = visit_body(world, [finding(world, 0, photo.model_dump())])
    client.post("/commands/log_visit", json=body, headers=auth(world, "supervisor"))
    pid = body["findings"][0]["problem_id"]
    assert client.post("/commands/assign_problem", json={"command_id": str(uuid4()), "problem_id": pid},
                       headers=headers).status_code == 201
    world.catch_up()
    later = (world.system.clock() + timedelta(days=10)).isoformat()
    rows = client.get(f"/campaigns/{world.campaign_id}/ledger", params={"now": later}, headers=headers).json()["rows"]
    assert (rows[0]["light"], rows[0]["overdue"], rows[0]["unit_name"]) == ("red", True, "unit_a")


NEVER_UPLOADED = {"sha256": "f" * 64, "media_type": "image/jpeg", "size": 120_000}


def acknowledged_problem(world: World, client: TestClient, photo: dict[str, Any]) -> str:
    """A problem found on a visit (citing `photo`), handed to unit A and acknowledged by its officer."""
    body = visit_body(world, [finding(world, 0, photo)])
    assert client.post("/commands/log_visit", json=body, headers=auth(world, "supervisor")).status_code == 201
    pid = body["findings"][0]["problem_id"]
    world.catch_up()
    for who, name in (("hq", "assign_problem"), ("officer_a", "acknowledge_problem")):
        response = client.post(f"/commands/{name}", json={"command_id": str(uuid4()), "problem_id": pid},
                               headers=auth(world, who))
        assert response.status_code == 201, response.text
    return pid


def rectify(client: TestClient, world: World, pid: str, photo: dict[str, Any]) -> Any:
    body = {"command_id": str(uuid4()), "problem_id": pid, "evidence": [photo], "note": "已清理"}
    return client.post("/commands/submit_rectification", json=body, headers=auth(world, "officer_a"))


def test_a_rectification_citing_a_photo_never_uploaded_is_a_404_and_writes_nothing(world: World,
                                                                                  client: TestClient) -> None:
    """整改反馈 citing a hash nobody uploaded: 404 evidence_not_found naming it, log unchanged; the real photo passes."""
    before = upload(world, client, auth(world, "supervisor"), PNG).json()
    pid = acknowledged_problem(world, client, before)
    head = world.log_head()
    response = rectify(client, world, pid, NEVER_UPLOADED)
    assert (response.status_code, response.json()["code"]) == (404, "evidence_not_found")
    assert response.json()["details"]["sha256"] == [NEVER_UPLOADED["sha256"]] and world.log_head() == head
    after = upload(world, client, auth(world, "officer_a"), PNG + b"after").json()
    assert rectify(client, world, pid, after).status_code == 201


def test_a_photo_uploaded_to_another_campaign_cannot_be_cited_here(world: World, client: TestClient) -> None:
    """Evidence belongs to the campaign it was uploaded to: citing it in another is 404 evidence_not_found."""
    before = upload(world, client, auth(world, "supervisor"), PNG).json()
    pid = acknowledged_problem(world, client, before)
    elsewhere = EvidenceRef(sha256="9" * 64, media_type="image/jpeg", size=2048)
    with psycopg.connect(world.system.database_url) as conn:
        record_evidence(conn, elsewhere, uuid4(), world.actors["officer_a"])
    head = world.log_head()
    response = rectify(client, world, pid, elsewhere.model_dump())
    assert (response.status_code, response.json()["code"]) == (404, "evidence_not_found") and world.log_head() == head


def test_a_photo_cited_with_another_type_or_size_than_uploaded_is_refused(world: World, client: TestClient) -> None:
    """The cited reference must be the uploaded one: a changed size is 422 evidence_mismatch, a non-image type 422."""
    ref = upload(world, client, auth(world, "supervisor"), PNG).json()
    head = world.log_head()
    for photo, code in (({**ref, "size": ref["size"] + 1}, "evidence_mismatch"),
                        ({**ref, "media_type": "image/svg+xml"}, "evidence_type_not_allowed")):
        response = client.post("/commands/log_visit", json=visit_body(world, [finding(world, 0, photo)]),
                               headers=auth(world, "supervisor"))
        assert (response.status_code, response.json()["code"]) == (422, code), response.text
    assert world.log_head() == head


def test_a_served_photo_is_never_sniffed_and_comes_inline_under_its_hash(world: World, client: TestClient) -> None:
    """GET /evidence/{sha} carries nosniff, a sandboxing CSP and `inline; filename="<sha>.png"` whatever it was called."""
    headers = auth(world, "supervisor")
    ref = upload(world, client, headers, PNG, name='../../etc/"passwd".html').json()
    got = client.get(f"/evidence/{ref['sha256']}", headers=headers)
    assert got.status_code == 200 and got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-disposition"] == f'inline; filename="{ref["sha256"]}.png"'
    assert "sandbox" in got.headers["content-security-policy"]


def test_a_photo_is_served_only_to_a_token_that_may_read_its_campaign(world: World, client: TestClient) -> None:
    """A token bound to another campaign gets 404 for a photo of this one; one bound here, or unbound, gets it."""
    ref = upload(world, client, auth(world, "supervisor"), PNG).json()
    path = f"/evidence/{ref['sha256']}"
    outsider = client.get(path, headers=auth(world, "supervisor", campaign_id=uuid4()))
    assert (outsider.status_code, outsider.json()["code"]) == (404, "evidence_not_found")
    assert client.get(path, headers=auth(world, "supervisor", campaign_id=world.campaign_id)).status_code == 200
    assert client.get(path, headers=auth(world, "hq")).status_code == 200


def test_an_upload_names_a_campaign_the_token_may_act_in(world: World, client: TestClient, tmp_path: Path) -> None:
    """No campaign named by an unbound token: 422; another campaign than the token's: 403; an unknown one: 404."""
    unbound, bound = auth(world, "supervisor"), auth(world, "supervisor", campaign_id=world.campaign_id)
    cases = ((unbound, None, 422, "campaign_required"), (bound, uuid4(), 403, None),
             (unbound, uuid4(), 404, "campaign_not_found"))
    for headers, campaign, status, code in cases:
        response = upload(world, client, headers, PNG, campaign_id=campaign)
        assert response.status_code == status, response.text
        assert code is None or response.json()["code"] == code
    assert stored_files(tmp_path / "uploads") == []
    assert upload(world, client, bound, PNG, campaign_id=None).status_code == 201  # the token's campaign
