"""Commands over HTTP, generically: one `POST /commands/{snake_case_name}` per registered handler.

Routes are generated from `infra.commands.HANDLERS` when the app is created, with the command's
pydantic model as the request body (so OpenAPI documents each), so a new command needs no API code.
The actor is the token's; a campaign-bound token may only act in its campaign.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from domain.kernel.base import Command
from infra.http.auth import Grant, current_grant, ensure_campaign, ensure_may_write
from infra.http.errors import ErrorBody
from infra.http.queries import campaign_of, load_state
from infra.commands import HANDLERS, Handler
from infra.store.event_store import Dudao


class EventRef(BaseModel):
    event_id: str
    type: str
    aggregate_id: str
    version: int


class CommandResultBody(BaseModel):
    """What an accepted command returns (201 when it recorded events, 200 when replayed or a no-op)."""

    command_id: str
    command: str
    aggregate_id: str
    events: list[EventRef]
    replayed: bool


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        200: "replayed (same command_id and payload) or nothing to change",
        400: "malformed JSON", 401: "missing or invalid token", 403: "role or campaign not allowed",
        404: "a referenced entity does not exist", 409: "conflict (state or command_id reuse)",
        413: "body over 1 MiB", 422: "invalid input or a broken rule", 503: "database unavailable",
    }.items()
}
ERROR_RESPONSES[200] = {"model": CommandResultBody, "description": ERROR_RESPONSES[200]["description"]}


def snake_case(name: str) -> str:
    """`StartCampaign` → `start_campaign`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def command_router() -> APIRouter:
    router = APIRouter(prefix="/commands", tags=["commands"])
    for command in sorted(HANDLERS, key=lambda c: c.__name__):
        name = snake_case(command.__name__)
        router.add_api_route(
            f"/{name}", endpoint_for(HANDLERS[command]), methods=["POST"], status_code=201, name=name,
            operation_id=name, summary=summary(command), response_model=CommandResultBody, responses=ERROR_RESPONSES,
        )
    return router


def summary(command: type[Command]) -> str:
    doc = inspect.getdoc(command) or command.__name__
    return doc.splitlines()[0]


def campaign_of_command(app: Dudao, handler: Handler[Any], command: Command) -> UUID | None:
    """The campaign a command acts in: named by the command, else the one its target aggregate belongs to."""
    named = handler.campaign(command)
    if named is not None:
        return named
    found = load_state(app, handler.kind, handler.target(command))
    return campaign_of(found[0]) if found else None


def endpoint_for(handler: Handler[Any]) -> Callable[..., JSONResponse]:
    """A sync endpoint (FastAPI runs it in its thread pool) whose body parameter is the command model."""

    def endpoint(request: Request, command: Command, grant: Grant) -> JSONResponse:
        ensure_may_write(grant)
        system = request.app.state.system
        if grant.campaign_id is not None:
            ensure_campaign(grant, campaign_of_command(system.app, handler, command))
        result = system.service.handle(command, grant.actor, correlation_id=request.state.correlation_id)
        status = 201 if result.events and not result.replayed else 200
        return JSONResponse(result.as_dict(), status_code=status)

    # The signature FastAPI inspects: the body is this handler's own command model.
    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter("command", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=handler.command),
        inspect.Parameter("grant", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Grant,
                          default=Depends(current_grant)),
    ])
    endpoint.__name__ = snake_case(handler.command.__name__)
    return endpoint
