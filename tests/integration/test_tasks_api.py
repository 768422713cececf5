"""Tasks, imports, metrics and rankings over HTTP: the 任务分解表 uploaded as multipart (JSON report and annotated
XLSX), the template, the indicator tree and task list, the task lifecycle through /commands, and the figures and
rankings with their CSV and XLSX exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from infra.bootstrap import bootstrap
from infra.clock import SimulatedClock
from infra.http import create_app
from infra.http.auth import create_token
from tests.integration.test_task_import import GOOD, bad_file, xlsx
from tests.support.escalation_kit import at
from tests.support.problem_world import World, build_world, photo

pytestmark = pytest.mark.integration


@pytest.fixture
def world(database_url: str, clock: SimulatedClock) -> Iterator[World]:
    system = bootstrap(database_url, clock=clock)
    w = build_world(system)
    clock.set(at("2021-12-27"))
    yield w
    system.close()


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.system), raise_server_exceptions=False) as c:
        yield c


def auth(world: World, who: str) -> dict[str, str]:
    actor = world.actors[who]
    with psycopg.connect(world.system.database_url) as conn:
        token = create_token(conn, actor.role, person_id=actor.person_id, name=actor.name, campaign_id=world.campaign_id)
    return {"Authorization": f"Bearer {token}"}


def upload(client: TestClient, world: World, data: bytes, headers: dict[str, str], **params: Any) -> Any:
    files = {"file": ("任务分解表.xlsx", data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}
    form = {"dry_run": str(params.pop("dry_run", False)).lower()}
    return client.post(f"/campaigns/{world.campaign_id}/imports", files=files, data=form, params=params,
                       headers=headers)


def test_a_task_table_is_uploaded_checked_and_listed(world: World, client: TestClient) -> None:
    """POST …/imports: bad rows by number (200, good rows imported); the annotated XLSX marks them; the same file
    again is all unchanged; the tree and the list show the tasks; a unit officer may not import (403)."""
    hq = auth(world, "hq")
    first = upload(client, world, xlsx(bad_file()), hq)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["created"] == 4 and [(e["row"], e["code"]) for e in body["errors"]] == [
        (8, "unknown_unit"), (9, "bad_date"), (10, "duplicate_row")]
    again = upload(client, world, xlsx(bad_file()), hq, result="xlsx")
    lines = list(load_workbook(io.BytesIO(again.content)).worksheets[0].iter_rows(values_only=True))
    assert again.status_code == 200 and lines[0][-2:] == ("导入结果", "错误说明")
    assert [line[-2] for line in lines[1:]] == ["指标行", "指标行", *["未变化（已导入过）"] * 4, "错误", "错误", "错误"]
    denied = upload(client, world, xlsx(GOOD), auth(world, "officer_a"))
    assert denied.status_code == 403
    world.catch_up()
    tree = client.get(f"/campaigns/{world.campaign_id}/indicators", headers=hq).json()
    assert [(n["code"], n["tasks"]) for n in tree["nodes"]] == [("3", 3), ("4.1", 1)]
    listed = client.get(f"/campaigns/{world.campaign_id}/tasks", params={"unit_id": str(world["unit_b"])},
                        headers=hq).json()
    assert sorted(r["name"] for r in listed["rows"]) == ["农贸市场外溢占道整治", "破损人行道板修复"]
    template = client.get("/imports/tasks/template.xlsx", headers=hq)
    assert template.status_code == 200 and load_workbook(io.BytesIO(template.content)).sheetnames == ["任务分解表", "填写说明"]


def test_a_file_without_a_required_column_is_refused_whole(world: World, client: TestClient) -> None:
    """422 with one error at the header row naming the missing column, and nothing written."""
    head = world.log_head()
    response = upload(client, world, xlsx([r[:5] for r in GOOD], ("指标编号", "指标名称", "任务", "牵头单位", "配合单位")),
                      auth(world, "hq"))
    assert response.status_code == 422 and response.json()["errors"][0]["column"] == "完成时限、报送频次"
    assert world.log_head() == head


def test_the_task_lifecycle_runs_through_the_command_routes_and_shows_in_the_metrics(
        world: World, client: TestClient, clock: SimulatedClock) -> None:
    """签收 and a progress report via /commands; the timeline lists them; …/metrics by unit gives unit_a's December
    report timeliness as 1/5 (the weekly task's 12-31 report on time; its 一日一汇报 task unreported on 12-28 to 12-31)
    and unit_b's as 0/1 (its month-end report unfiled), with numerator and denominator; …/rankings and the CSV and XLSX exports answer the same."""
    hq, officer = auth(world, "hq"), auth(world, "officer_a")
    assert upload(client, world, xlsx(GOOD), hq).json()["created"] == 4
    world.catch_up()
    task_id = next(r["task_id"] for r in client.get(f"/campaigns/{world.campaign_id}/tasks", headers=hq).json()["rows"]
                   if r["name"] == "背街小巷垃圾日产日清")
    world.upload((photo("lane"),))
    for name, extra in (("acknowledge_task", {}), ("report_task_progress", {
            "text": "已清理 12 条小巷", "percent": 30, "evidence": [photo("lane").model_dump(mode="json")]})):
        response = client.post(f"/commands/{name}", json={"command_id": name, "task_id": task_id, **extra},
                               headers=officer)
        assert response.status_code == 201, response.text
    world.catch_up()
    timeline = client.get(f"/tasks/{task_id}/timeline", headers=hq).json()
    assert [t["event_type"] for t in timeline["timeline"]] == ["TaskDefined", "TaskAssigned", "TaskAcknowledged",
                                                             "TaskProgressReported"]
    clock.set(at("2022-01-05"))
    world.catch_up()
    query = {"by": "unit", "period": "month", "day": "2021-12-01"}
    metrics = client.get(f"/campaigns/{world.campaign_id}/metrics", params=query, headers=hq).json()
    row = next(r for r in metrics["rows"] if r["key"] == str(world["unit_a"]))
    assert row["figures"]["report_timeliness"] == {"value": 0.2, "numerator": 1, "denominator": 5}
    assert metrics["period"]["start"] == "2021-12-01" and "formula_zh" in metrics["formulas"]["closure_rate"]
    ranked = client.get(f"/campaigns/{world.campaign_id}/rankings", params={**query, "metric": "report_timeliness"},
                        headers=hq).json()
    assert [(r["rank"], r["name"], r["numerator"], r["denominator"]) for r in ranked["rows"]] == [(1, "unit_a", 1, 5),
                                                                                            (2, "unit_b", 0, 1)]
    exported = client.get(f"/campaigns/{world.campaign_id}/metrics.csv", params=query, headers=hq)
    assert exported.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert table[0][:4] == ["分组", "编码", "整改率", "整改率（分子/分母）"] and table[-1][0] == "合计"
    sheet = client.get(f"/campaigns/{world.campaign_id}/rankings.xlsx", params={**query, "metric": "report_timeliness"},
                       headers=hq)
    assert list(load_workbook(io.BytesIO(sheet.content)).worksheets[0].iter_rows(values_only=True))[1][:2] == (1, "unit_a")
    bad = client.get(f"/campaigns/{world.campaign_id}/metrics", params={"period": "decade"}, headers=hq)
    assert bad.status_code == 422 and bad.json()["code"] == "period_invalid"
    assert date.fromisoformat(metrics["period"]["end_exclusive"]) == date(2022, 1, 1)
