"""HTTP routes of the evaluation figures (考评指标) and rankings (排名), as JSON, CSV and XLSX.

(`routes_metrics.py` is another thing: the Prometheus `/metrics` of the running system.)

`GET /campaigns/{id}/metrics` gives every group's figures — per unit, grid, sub-command, indicator or
the campaign (`by`) — for a period (`period` = week, month, two_month, custom with `start`/`end`, or all:
the campaign to date; `day` picks the week, month or 双月, default the day of `as_of`), judged at
min(period end, `as_of`); each figure with its numerator and denominator, and the formulas. `GET
/campaigns/{id}/rankings` ranks the groups by one figure (default 按期结案率) with the stable tie-break.
Each also as `.csv` (UTF-8 with BOM, for Excel) and `.xlsx`. See `projections.metrics` for the formulas.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from infra.evaluation import evaluation_body, ranking_body
from infra.http.auth import Grant, current_grant
from infra.http.errors import error_responses
from infra.http.params import AsOf, ReadDay, ReadInstant
from infra.http.queries import snapshot, visible_campaign
from infra.imports.tables import XLSX_MEDIA_TYPE, workbook

router = APIRouter(tags=["metrics"])

ERRORS = error_responses(401, 403, 404)  # a read's own; 400, 413, 422 and 503 are every route's (the app's)
READ_MODELS = ("metrics", "tasks", "structure")
By = Query("unit", description="unit, grid, sub_command, indicator or campaign")
Period = Query("month", description="week, month, two_month (双月), custom (with start and end) or all (to date)")
Day = Query(None, description="a day inside the week/month/双月 (default: the day of as_of)")
Metric = Query("on_time_closure_rate", description="the figure to rank by (see `formulas` in …/metrics)")


def _params(by: str = By, period: str = Period, day: ReadDay | None = Day,
            start: ReadDay | None = Query(None, description="custom: first day"),
            end: ReadDay | None = Query(None, description="custom: last day (included)"),
            as_of: ReadInstant | None = AsOf) -> dict[str, Any]:
    return {"by": by, "period": period, "day": day, "start": start, "end": end, "as_of": as_of}


def figures(request: Request, grant: Grant, campaign_id: UUID, params: dict[str, Any]) -> dict[str, Any]:
    visible_campaign(request, grant, campaign_id)
    system = request.app.state.system
    body, positions = snapshot(request, READ_MODELS, lambda conn: evaluation_body(system, conn, campaign_id, **params))
    return {**body, **positions}


def ranking(request: Request, grant: Grant, campaign_id: UUID, metric: str, params: dict[str, Any]) -> dict[str, Any]:
    visible_campaign(request, grant, campaign_id)
    system = request.app.state.system
    body, positions = snapshot(request, READ_MODELS,
                               lambda conn: ranking_body(system, conn, campaign_id, metric=metric, **params))
    return {**body, **positions}


@router.get("/campaigns/{campaign_id}/metrics", responses=ERRORS)
def campaign_metrics(campaign_id: UUID, request: Request, params: dict[str, Any] = Depends(_params),
                     grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """考评指标: 结案率, 按期结案率, 返工率, 延期率, 超期未处置率, 反弹率, 签收及时率, 平均结案用时 and 任务报送及时率 per group,
    each with numerator and denominator, plus the totals and the formulas."""
    return jsonable_encoder(figures(request, grant, campaign_id, params))


@router.get("/campaigns/{campaign_id}/rankings", responses=ERRORS)
def campaign_rankings(campaign_id: UUID, request: Request, metric: str = Metric,
                      params: dict[str, Any] = Depends(_params), grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """排名: the period's groups by one figure, best first; ties by name (code-point order), then id."""
    return jsonable_encoder(ranking(request, grant, campaign_id, metric, params))


# --- exports --------------------------------------------------------------------------------------------


def metrics_table(body: dict[str, Any]) -> list[list[Any]]:
    """Header plus one line per group: for each figure its value (%, or hours) and numerator/denominator."""
    keys = list(body["formulas"])
    header = ["分组", "编码"]
    for k in keys:
        header += [body["formulas"][k]["name_zh"], f"{body['formulas'][k]['name_zh']}（分子/分母）"]
    lines: list[list[Any]] = [header]
    for r in [*body["rows"], {"name": "合计", "code": None, "figures": body["totals"]["figures"]}]:
        line: list[Any] = [r["name"], r.get("code") or ""]
        for k in keys:
            f = r["figures"][k]
            line += [_value(k, f["value"]), f"{f['numerator']}/{f['denominator']}"]
        lines.append(line)
    return lines


def ranking_table(body: dict[str, Any]) -> list[list[Any]]:
    header = ["名次", "分组", "编码", body["metric_zh"], "分子", "分母"]
    return [header, *([r["rank"], r["name"], r.get("code") or "", _value(body["metric"], r["value"]), r["numerator"],
                       r["denominator"]] for r in body["rows"])]


def _value(key: str, value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if key == "mean_hours_to_close" else f"{value * 100:.1f}%"


def as_csv(lines: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(lines)
    return out.getvalue().encode("utf-8-sig")


def _download(data: bytes, media_type: str, stem: str, title_zh: str, suffix: str) -> Response:
    disposition = f"attachment; filename=\"{stem}.{suffix}\"; filename*=UTF-8''{quote(f'{title_zh}.{suffix}')}"
    return Response(data, media_type=media_type, headers={"Content-Disposition": disposition})


def _title(body: dict[str, Any], what: str) -> str:
    return f"{what}-{body['period']['label_zh']}"


def _media(suffix: str) -> str:
    return "text/csv; charset=utf-8" if suffix == "csv" else XLSX_MEDIA_TYPE


def _file(body: dict[str, Any], lines: list[list[Any]], what_zh: str, stem: str, suffix: str) -> Response:
    data = as_csv(lines) if suffix == "csv" else workbook([(what_zh, lines, [])])
    return _download(data, _media(suffix), stem, _title(body, what_zh), suffix)


def metrics_export(suffix: str) -> Callable[..., Response]:
    def endpoint(campaign_id: UUID, request: Request, params: dict[str, Any] = Depends(_params),
                 grant: Grant = Depends(current_grant)) -> Response:
        body = figures(request, grant, campaign_id, params)
        return _file(body, metrics_table(body), "考评指标", "metrics", suffix)

    endpoint.__name__ = f"metrics_{suffix}"
    endpoint.__doc__ = f"考评指标 as {suffix.upper()}: the same query as …/metrics, a line per group and the totals."
    return endpoint


def rankings_export(suffix: str) -> Callable[..., Response]:
    def endpoint(campaign_id: UUID, request: Request, metric: str = Metric, params: dict[str, Any] = Depends(_params),
                 grant: Grant = Depends(current_grant)) -> Response:
        body = ranking(request, grant, campaign_id, metric, params)
        return _file(body, ranking_table(body), "排名", "rankings", suffix)

    endpoint.__name__ = f"rankings_{suffix}"
    endpoint.__doc__ = f"排名 as {suffix.upper()}: the same query as …/rankings."
    return endpoint


for _suffix in ("csv", "xlsx"):
    router.add_api_route(f"/campaigns/{{campaign_id}}/metrics.{_suffix}", metrics_export(_suffix), methods=["GET"],
                         response_class=Response, responses=ERRORS)
    router.add_api_route(f"/campaigns/{{campaign_id}}/rankings.{_suffix}", rankings_export(_suffix), methods=["GET"],
                         response_class=Response, responses=ERRORS)
