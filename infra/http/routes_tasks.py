"""HTTP routes of the task decomposition (任务分解): the indicator tree, the task list, one task's timeline and
reports, importing a 任务分解表, and its template.

Task commands (define, 交办, 签收, progress reports, completion, extension) go through the generic
`POST /commands/{name}` routes; this router adds what is not a command. `POST /campaigns/{id}/imports`
takes the file as multipart form data and answers the import report as JSON, or (`?result=xlsx`) the
uploaded rows annotated with their result and an error column, as an XLSX. Lists read the tasks read
model in one snapshot, as of `as_of` when given; a unit role sees the tasks its units lead or help with.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from domain import tasks as tk
from infra.http.auth import Grant, current_grant, ensure_campaign, ensure_may_write
from infra.http.errors import ERROR_CONTENT, error_responses
from infra.http.params import AsOf, ReadInstant
from infra.http.queries import campaign_of, existing, instant, snapshot, visible_campaign
from infra.http.scope import visible
from infra.imports.tables import XLSX_MEDIA_TYPE
from infra.imports.tasks import annotated_xlsx, import_tasks, template_xlsx
from projections import tasks as tp

router = APIRouter(tags=["tasks"])

ERRORS = error_responses(401, 403, 404)  # a route's own; 400, 413, 422 and 503 are every route's (the app's)
# The import report (its counts, every row's outcome, every error by row), as 200 and as the 422 of a file that
# cannot be read as a 任务分解表 at all (`errors` says why); any other 422 is the one error body.
IMPORT_REPORT: dict[str, Any] = {"type": "object", "required": ["campaign_id", "file", "rows", "errors", "results"]}
IMPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"description": "the import report (`?result=xlsx`: the uploaded rows annotated, as XLSX)",
          "content": {"application/json": {"schema": IMPORT_REPORT}, XLSX_MEDIA_TYPE: {}}},
    422: {"description": "the file cannot be read as a 任务分解表 (the import report, whose `errors` say why), or "
                         "invalid input (the error body)",
          "content": {"application/json": {"schema": {"anyOf": [IMPORT_REPORT, ERROR_CONTENT["application/json"]["schema"]]}}}},
}
READ_MODELS = ("tasks", "structure")


def _download(data: bytes, ascii_name: str, name: str) -> Response:
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return Response(data, media_type=XLSX_MEDIA_TYPE, headers={"Content-Disposition": disposition})


@router.get("/campaigns/{campaign_id}/indicators", responses=ERRORS)
def indicator_tree(campaign_id: UUID, request: Request, as_of: ReadInstant | None = AsOf,
                   grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The indicator tree (测评指标体系, any depth, codes like 3.2.1), each node with the roll-up of its subtree's tasks:
    how many, by state, completed, overdue, mean percent done, reports and missed reports."""
    campaign = visible_campaign(request, grant, campaign_id)
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    tree, positions = snapshot(request, READ_MODELS,
                               lambda conn: tp.indicator_tree(conn, campaign_id, at, as_of=at if as_of else None))
    return jsonable_encoder({"campaign_id": campaign_id, "as_of": at, "nodes": tree, **positions})


@router.get("/campaigns/{campaign_id}/tasks", responses=ERRORS)
def list_tasks(campaign_id: UUID, request: Request, unit_id: UUID | None = Query(None, description="lead unit"),
               indicator_id: UUID | None = Query(None, description="an indicator: its whole subtree"),
               state: tk.TaskState | None = None, as_of: ReadInstant | None = AsOf,
               grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """The campaign's tasks (任务清单): lead and co-units, state, deadline, cadence, percent done, reports, misses."""
    campaign = visible_campaign(request, grant, campaign_id)
    at = instant(as_of, campaign.timezone, request.app.state.system.clock)
    rows, positions = snapshot(request, READ_MODELS, lambda conn: tp.list_tasks(
        conn, campaign_id, at, unit_id=unit_id, indicator_id=indicator_id, state=state.value if state else None,
        as_of=at if as_of else None))
    scope = visible(request, grant)
    if scope.unit_ids is not None:
        rows = [r for r in rows if {str(u["id"]) for u in [r["lead_unit"] or {"id": None}, *r["co_units"]]}
                & scope.unit_ids]
    return jsonable_encoder({"campaign_id": campaign_id, "as_of": at, "rows": rows, **positions})


@router.get("/tasks/{task_id}/timeline", responses=ERRORS)
def task_timeline(task_id: UUID, request: Request, grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """One task: its state folded from its events, its timeline (履历) and its reports and missed reports by period."""
    task, version = existing(request.app.state.system.app, "task", task_id)
    ensure_campaign(grant, campaign_of(task))
    (timeline, reports), positions = snapshot(request, READ_MODELS,
                                              lambda conn: (tp.timeline(conn, task_id), tp.reports_of(conn, task_id)))
    return jsonable_encoder({"task": {**jsonable_encoder(task), "version": version}, "timeline": timeline,
                             "reports": reports, **positions})


@router.post("/campaigns/{campaign_id}/imports", responses=IMPORT_RESPONSES)
def import_task_table(campaign_id: UUID, request: Request,
                      file: UploadFile = File(..., description="任务分解表 (.xlsx, or .csv in UTF-8 or GBK)"),
                      dry_run: bool = Form(False, description="check every row, write nothing"),
                      result: Literal["json", "xlsx"] = Query("json", description="xlsx: the rows annotated"),
                      grant: Grant = Depends(current_grant)) -> Response:
    """Import a 任务分解表 (导入任务分解表) as the token's actor through the command service: bad rows are reported by
    row number with the reason and nothing of them is written; importing the same file again writes nothing new."""
    ensure_may_write(grant)
    visible_campaign(request, grant, campaign_id)
    system = request.app.state.system
    data = file.file.read()
    with request.app.state.read_pool.connection() as conn:
        report = import_tasks(system.service, conn, campaign_id, data, file.filename or "upload", grant,
                              dry_run=dry_run)
    if result == "xlsx":
        return _download(annotated_xlsx(report), "import-result.xlsx", f"导入结果-{file.filename or '任务分解表'}.xlsx")
    body = report.as_dict()
    return JSONResponse(jsonable_encoder({"campaign_id": campaign_id, **body}), status_code=422 if report.file_errors else 200)


@router.get("/imports/tasks/template.xlsx", response_class=Response, responses=ERRORS)
def task_table_template(grant: Grant = Depends(current_grant)) -> Response:
    """The 任务分解表 template (模板): the columns, example rows and a sheet explaining each column."""
    return _download(template_xlsx(), "task-template.xlsx", "任务分解表模板.xlsx")
