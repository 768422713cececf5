"""HTTP routes of the drill clock (演练时钟): read it, and — an admin, in a drill deployment only — set or advance it.

`GET /drill/clock` tells any client whether the deployment is a drill and what time it reads (a field app shows
"演练" and never mistakes a drill for the real thing). `POST /drill/clock` moves the one shared clock every process
reads (`infra.clock`): to an instant (`set`) or forward (`advance_seconds`), optionally standing it still or
letting it run (`running`); it never goes back (409 `drill_clock_backwards`). A deployment not started in drill
mode refuses it (409 `drill_mode_off`): a real history never gets a hand-set time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, model_validator

from domain.kernel.base import Conflict, DomainError, Forbidden
from domain.kernel.edge import at_the_edge
from domain.kernel.instants import Instant
from domain.kernel.scalars import Count, Flag
from infra.clock import DrillClock, DrillRefused
from infra.http.auth import Grant, current_grant
from infra.http.errors import ErrorBody

router = APIRouter(tags=["drill"])
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorBody} for s in (401, 403, 409, 422, 503)}
TEN_YEARS_S = 10 * 366 * 86400


class DrillClockChange(BaseModel):
    """How to move the drill clock: to an instant (`set`) or forward by `advance_seconds`; `running` false stops it
    where it is set (true: it runs on at the wall clock's pace); leave it out to keep what it does."""

    model_config = ConfigDict(extra="forbid")

    set: Instant | None = None
    advance_seconds: Count | None = Field(default=None, ge=1, le=TEN_YEARS_S)
    running: Flag | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _at_the_edge(cls, data: Any, handler: ModelWrapValidatorHandler[DrillClockChange]) -> DrillClockChange:
        with at_the_edge():
            return handler(data)


class DrillClockState(BaseModel):
    """Whether this deployment is a drill (演练), the time it reads, and whether its clock runs."""

    drill: bool
    now: datetime
    running: bool | None = None
    started_at: datetime | None = None


def drill_clock(request: Request) -> DrillClock | None:
    """The deployment's drill clock, or None when it runs on the wall clock (or a test's own clock)."""
    clock = request.app.state.system.clock
    found = clock if isinstance(clock, DrillClock) else getattr(clock, "drill_clock", None)
    return found if isinstance(found, DrillClock) else None


def refused(exc: DrillRefused) -> DomainError:
    zh = {"drill_mode_off": "本系统未以演练模式启动，不能调整时钟", "drill_clock_backwards": "演练时钟不能回拨"}
    return Conflict(exc.code, zh.get(exc.code, "演练时钟不可用"), str(exc))


@router.get("/drill/clock", response_model=DrillClockState, responses=ERRORS)
def read_drill_clock(request: Request, grant: Grant = Depends(current_grant)) -> DrillClockState:
    """Whether this deployment is a drill (演练模式) and the time every process reads now."""
    clock = drill_clock(request)
    if clock is None:
        return DrillClockState(drill=False, now=request.app.state.system.clock())
    return DrillClockState(drill=True, **clock.state())


@router.post("/drill/clock", response_model=DrillClockState, responses=ERRORS)
def move_drill_clock(change: DrillClockChange, request: Request,
                     grant: Grant = Depends(current_grant)) -> DrillClockState:
    """Set or advance the shared drill clock (admin only; a drill deployment only; never back)."""
    if grant.actor.role != "admin":
        raise Forbidden("role_not_allowed", "只有系统管理员可以调整演练时钟", "only an admin may move the drill clock",
                        role=grant.actor.role, allowed=["admin"])
    clock = drill_clock(request)
    if clock is None:
        raise refused(DrillRefused("drill_mode_off", "this deployment was not started in drill mode"))
    if (change.set is None) == (change.advance_seconds is None) and change.running is None:
        raise DomainError("one_change_required", "须给出 set 或 advance_seconds 之一（或 running）",
                          "give one of set and advance_seconds (or running)")
    if change.set is not None and change.advance_seconds is not None:
        raise DomainError("one_change_required", "set 与 advance_seconds 只能给出一个",
                          "give set or advance_seconds, not both")
    by = grant.actor.name or str(grant.actor.person_id or "admin")
    try:
        if change.set is not None:
            clock.set(change.set, running=change.running, by=by)
        else:
            clock.advance(timedelta(seconds=change.advance_seconds or 0), running=change.running, by=by)
    except DrillRefused as exc:
        raise refused(exc) from exc
    return DrillClockState(drill=True, **clock.state())
