"""HTTP routes of the problem loop: evidence photos, the rectification ledger (整改台账) and its exports,
one problem with its timeline, and grid progress.

Commands (report, 交办, 签收, 整改, 复查, 销号, visits, policies) go through the generic
`POST /commands/{name}` routes; this router adds what is not a command. `as_of` on the ledger
routes sets the instant the clock is read at (for simulated clocks and "as it looked then"); `as_of`
on one problem replays it to that instant from the stored events (state, clock and timeline then).
`now`, their former name, is a deprecated alias of `as_of` for one release (`infra.http.params.read_at`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, Response

from domain.kernel.base import DomainError, NotFound
from domain.kernel.calendar import WorkCalendar
from domain.kernel.timefmt import local_day_stamp
from domain.policy.campaign import CampaignPolicy, campaign_calendar, categories_at, policy_id_for
from domain.problem.events import EvidenceRef, ProblemState
from domain.problem.rules import is_overdue, problem_light, time_used_fraction, working_hours_used
from infra.http.auth import Grant, current_grant, ensure_campaign, ensure_may_write
from infra.http.errors import ErrorBody, error_responses
from infra.http import replayed
from infra.http.params import ReadDay, ReadInstant, read_at
from infra.http.queries import campaign_of, existing, instant, load_state, read_consistently, snapshot, visible_campaign, zone
from infra.http.scope import Visible, ensure_problem_visible, visible
from infra.http.timestamps import respond_in
from infra.calendars import official_calendar
from infra.evaluation import evaluation_body
from infra.http.exports import ledger_csv, ledger_xlsx
from infra.store.uploads import EvidenceStore, evidence_campaigns, record_evidence
from projections import ledger as lg
from projections import metrics as mt

router = APIRouter()

ERRORS = error_responses(401, 403, 404)  # a read's own; 400, 413, 422 and 503 are every route's (the app's)
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody} for s in (400, 401, 403, 404, 413, 415, 422, 503)
}
LEDGER_PROJECTIONS = (lg.LedgerProjection.name, "structure")
UploadCampaign = Form(None, description="the campaign (创建活动) the photo is evidence in; default: the token's")
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}
# What every served photo carries: never sniffed into something else, never run as a page, cached as immutable.
SERVED_PHOTO_HEADERS = {"Cache-Control": "private, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff",
                        "Content-Security-Policy": "default-src 'none'; sandbox"}


def evidence_store(request: Request) -> EvidenceStore:
    """The app's photo store, set once by `create_app` on `app.state`."""
    store: EvidenceStore = request.app.state.evidence_store
    return store


@router.post("/evidence", status_code=201, tags=["evidence"], responses=UPLOAD_ERRORS)
def upload_evidence(request: Request, file: UploadFile = File(..., description="照片 (JPEG/PNG/GIF/WebP)"),
                    campaign_id: UUID | None = UploadCampaign,
                    grant: Grant = Depends(current_grant),
                    store: EvidenceStore = Depends(evidence_store)) -> JSONResponse:
    """Store a photo content-addressed (上传证据照片) as evidence in a campaign; returns the evidence reference to put
    in that campaign's commands (a command may cite only photos uploaded to its campaign)."""
    ensure_may_write(grant)
    campaign = campaign_id or grant.campaign_id
    if campaign is None:
        raise DomainError("campaign_required", "上传照片须指明所属创建活动（campaign_id）",
                          "an upload names the campaign it is evidence in (campaign_id)")
    visible_campaign(request, grant, campaign)
    ref = store.put(file.file.read(store.max_bytes + 1))
    with request.app.state.read_pool.connection() as conn:
        record_evidence(conn, EvidenceRef(**ref), campaign, grant.actor)
    return JSONResponse(ref, status_code=201)


@router.get("/evidence/{sha256}", tags=["evidence"], response_class=FileResponse, responses=ERRORS)
def get_evidence(sha256: str, request: Request, grant: Grant = Depends(current_grant),
                 store: EvidenceStore = Depends(evidence_store)) -> FileResponse:
    """A stored photo by its SHA-256, if uploaded to a campaign the token may read (immutable: cacheable forever).

    Served inline under its hash as the file name, never sniffed (`nosniff`) and sandboxed.
    """
    path, media_type = store.get(sha256)
    with request.app.state.read_pool.connection() as conn:
        campaigns = evidence_campaigns(conn, sha256)
    if not any(grant.may_see(c) for c in campaigns):
        raise NotFound("evidence_not_found", "证据照片不存在", "evidence not found", sha256=sha256)
    return FileResponse(path, media_type=media_type, filename=f"{sha256}.{EXTENSIONS.get(media_type, 'bin')}",
                        content_disposition_type="inline", headers=SERVED_PHOTO_HEADERS)


def campaign_clock(request: Request, campaign_id: UUID, now: datetime | None,
                   timezone: str) -> tuple[datetime, WorkCalendar, CampaignPolicy | None]:
    """The instant to read at, the campaign calendar in force then, and the campaign policy."""
    at = instant(now, timezone, request.app.state.system.clock)
    found = load_state(request.app.state.system.app, "campaign_policy", policy_id_for(campaign_id))
    policy = found[0] if found else None
    return at, campaign_calendar(official_calendar(), policy, at), policy


@dataclass(frozen=True)
class LedgerView:
    """How one ledger request reads the clock: at which instant, on which calendar, in which zone, with which names."""

    at: datetime
    calendar: WorkCalendar
    tz: tzinfo
    category_names: dict[str, str]
    seen: Visible  # the rows this token may see: its units' problems, or those at its places (infra.http.scope)


def ledger_view(request: Request, grant: Grant, campaign_id: UUID, now: datetime | None) -> LedgerView:
    campaign = visible_campaign(request, grant, campaign_id)
    at, calendar, policy = campaign_clock(request, campaign_id, now, campaign.timezone)
    return LedgerView(at, calendar, zone(campaign.timezone), {c.code: c.name_zh for c in categories_at(policy, at)},
                      visible(request, grant))


def ledger_filters(unit_id: UUID | None = None, grid_id: UUID | None = None, sub_command_id: UUID | None = None,
                   state: ProblemState | None = None) -> dict[str, Any]:
    """Filters of the ledger: responsible unit, grid, sub-command (分指挥部), state."""
    return {"unit_id": unit_id, "grid_id": grid_id, "sub_command_id": sub_command_id,
            "state": state.value if state else None}


@router.get("/campaigns/{campaign_id}/ledger", tags=["ledger"], responses=ERRORS)
def campaign_ledger(campaign_id: UUID, request: Request, as_of: datetime | None = Depends(read_at),
                    filters: dict[str, Any] = Depends(ledger_filters),
                    grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """整改台账: one row per problem with deadline, working time used, its light (green < 80 %, yellow ≤ 100 %, red) and
    whether it was closed on time (按期结案); the summary states the campaign's 整改率, 结案率 and 按期结案率 to date,
    each with numerator and denominator, by the evaluation metrics' formulas.

    A unit's token lists its units' problems only; a leader's, those at their linked places."""
    view = ledger_view(request, grant, campaign_id, as_of)
    system = request.app.state.system

    def read(conn: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rows = view.seen.rows(lg.ledger(conn, campaign_id, now=view.at, calendar=view.calendar, **filters))
        return rows, evaluation_body(system, conn, campaign_id, "campaign", "all", None, None, None, view.at)

    (rows, figures), positions = snapshot(request, LEDGER_PROJECTIONS + ("metrics",), read)
    body = jsonable_encoder(rows)
    for row in body:
        row["category_name"] = view.category_names.get(row["category"], row["category"])
    return {"campaign_id": str(campaign_id), "as_of": view.at.isoformat(), "now": view.at.isoformat(),
            "summary": jsonable_encoder(ledger_summary(figures)), "rows": body, **positions}


SUMMARY_RATES = ("rectification_rate", "closure_rate", "on_time_closure_rate")


def ledger_summary(figures: dict[str, Any]) -> dict[str, Any]:
    """The ledger's summary (台账汇总): 整改率, 结案率 and 按期结案率 of the campaign to date, each with numerator and
    denominator — the evaluation metrics' own figures and formulas (`projections.metrics`), judged at `as_of`."""
    totals = figures["totals"]
    return {"period": figures["period"], "judged_at": figures["judged_at"], "counts": totals["counts"],
            "rates": {k: totals["figures"][k] for k in SUMMARY_RATES},
            "formulas": {k: figures["formulas"][k] for k in SUMMARY_RATES}}


def export(request: Request, grant: Grant, campaign_id: UUID, now: datetime | None, filters: dict[str, Any],
           write: Callable[..., bytes], media_type: str, suffix: str) -> Response:
    """The filtered ledger written by `write` as a download named 整改台账-<date>.<suffix>."""
    view = ledger_view(request, grant, campaign_id, now)
    with request.app.state.read_pool.connection() as conn:
        rows = view.seen.rows(lg.ledger(conn, campaign_id, now=view.at, calendar=view.calendar, **filters))
    filename = f"整改台账-{local_day_stamp(view.at, view.tz)}.{suffix}"
    disposition = f"attachment; filename=\"ledger.{suffix}\"; filename*=UTF-8''{quote(filename)}"
    return Response(write(rows, view.category_names, view.tz), media_type=media_type,
                    headers={"Content-Disposition": disposition})


@router.get("/campaigns/{campaign_id}/ledger.csv", tags=["ledger"], responses=ERRORS, response_class=Response)
def campaign_ledger_csv(campaign_id: UUID, request: Request, as_of: datetime | None = Depends(read_at),
                        filters: dict[str, Any] = Depends(ledger_filters),
                        grant: Grant = Depends(current_grant)) -> Response:
    """The ledger as CSV (UTF-8 with BOM, so Excel shows the Chinese correctly)."""
    return export(request, grant, campaign_id, as_of, filters, ledger_csv, "text/csv; charset=utf-8", "csv")


@router.get("/campaigns/{campaign_id}/ledger.xlsx", tags=["ledger"], responses=ERRORS, response_class=Response)
def campaign_ledger_xlsx(campaign_id: UUID, request: Request, as_of: datetime | None = Depends(read_at),
                         filters: dict[str, Any] = Depends(ledger_filters),
                         grant: Grant = Depends(current_grant)) -> Response:
    """The ledger as an Excel workbook (XLSX)."""
    return export(request, grant, campaign_id, as_of, filters, ledger_xlsx,
                  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")


@router.get("/campaigns/{campaign_id}/grids/progress", tags=["ledger"], responses=ERRORS)
def grids_progress(campaign_id: UUID, request: Request,
                   period: str = Query("all", description="the rates' period: all (to date), week, month, two_month "
                                                          "or custom"),
                   day: ReadDay | None = Query(None, description="a day in the week/month/双月 (default: as_of's)"),
                   start: ReadDay | None = Query(None, description="custom: first day"),
                   end: ReadDay | None = Query(None, description="custom: last day (included)"),
                   as_of: ReadInstant | None = Query(None, description="judge as of this instant (default: now)"),
                   grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """Per grid (网格): problems, rectified (verified or closed), closed and open, and its rates for the period as of
    `as_of` — 结案率, 按期结案率, 返工率, 延期率, 超期未处置率, 反弹率, 签收及时率, 平均结案用时 — each with numerator and
    denominator, by the formulas of `projections.metrics` (given in `formulas`)."""
    visible_campaign(request, grant, campaign_id)
    system = request.app.state.system

    def read(conn: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return lg.grid_counts(conn, campaign_id), evaluation_body(system, conn, campaign_id, "grid", period, day, start,
                                                                  end, as_of)

    (counts, figures), positions = snapshot(request, LEDGER_PROJECTIONS + ("metrics",), read)
    by_grid = {r["key"]: r["figures"] for r in figures["rows"]}
    rows = [{**r, "rates": by_grid.get(r["grid_id"]) or mt.Tally().figures()} for r in counts]
    return jsonable_encoder({"campaign_id": campaign_id, "period": figures["period"], "as_of": figures["as_of"],
                             "judged_at": figures["judged_at"], "formulas": figures["formulas"], "rows": rows,
                             **positions})


@router.get("/problems/{problem_id}", tags=["ledger"], responses=ERRORS)
def get_problem(problem_id: UUID, request: Request, as_of: datetime | None = Depends(read_at),
                grant: Grant = Depends(current_grant)) -> dict[str, Any]:
    """One problem: its state folded from its events, its clock (三色: the light) now, and its full timeline (履历).

    `as_of=T`: the problem as the store had it at T — folded from the events recorded by then, its clock read at T,
    its timeline up to then, and the names then in force (`names_in_force`; `infra.http.replayed`). `now` is the
    deprecated name of `as_of` (one release).
    403 `out_of_scope` for a unit's token when the problem is another unit's, for a leader's outside their places."""
    app = request.app.state.system.app
    found = load_state(app, "problem", problem_id)
    if found is None:
        raise NotFound("problem_not_found", "问题不存在", "problem not found", problem_id=str(problem_id))
    problem, version = found
    ensure_campaign(grant, campaign_of(problem))
    ensure_problem_visible(request, grant, problem)
    campaign, _ = existing(app, "campaign", problem.campaign_id)
    respond_in(request, campaign.timezone)
    then: dict[str, Any] = {}
    if as_of is not None:
        when = instant(as_of, campaign.timezone, request.app.state.system.clock)
        problem, version, reader = replayed.folded_at(app, "problem", "问题", problem_id, when)
        then = {"as_of": when.isoformat(), "names_in_force": replayed.names_then(reader, jsonable_encoder(problem))}
    at, calendar, _ = campaign_clock(request, problem.campaign_id, as_of, campaign.timezone)
    assigned = problem.assigned_at is not None
    clock = {"hours_used": round(working_hours_used(problem, calendar, at), 2),
             "time_used": round(time_used_fraction(problem, calendar, at), 4) if assigned else None,
             "light": problem_light(problem, calendar, at) if assigned else None,
             "overdue": is_overdue(problem, at)}
    body = read_consistently(request, LEDGER_PROJECTIONS, lambda conn: lg.timeline(conn, problem_id))
    timeline = [r for r in body["rows"] if r["version"] <= version]
    return {"problem": {**jsonable_encoder(problem), "version": version}, "as_of": at.isoformat(),
            "now": at.isoformat(), **then,
            "clock": clock, "timeline": timeline, "projection_position": body["projection_position"],
            "log_head": body["log_head"]}
