"""Commands over HTTP, generically: one `POST /commands/{snake_case_name}` per registered handler.

Routes are generated from `infra.commands.HANDLERS` when the app is created, with the command's
pydantic model as the request body (so OpenAPI documents each), so a new command needs no API code.
The actor is the token's; the command service checks the role, the campaign (a campaign-bound
token acts only in its campaign: 403 `campaign_not_allowed`), every reference (404, or 422
`cross_campaign_reference`) and the token's scope (403 `out_of_scope`) — the same checks as for
the CLI and the escalator (`infra.commands.authorization`).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from domain.kernel.base import Command
from infra.http.auth import Grant, current_grant
from infra.http.errors import ErrorBody
from infra.commands import HANDLERS, Handler, snake_case


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
        400: "malformed JSON", 401: "missing, invalid, revoked or expired token (`unauthenticated`, `token_expired`)",
        403: "role, campaign or scope not allowed (`read_only_role`, `role_not_allowed`, `campaign_not_allowed`, "
             "`out_of_scope`)",
        404: "the target or a referenced entity does not exist", 409: "conflict (state or command_id reuse)",
        413: "body over 1 MiB",
        422: "invalid input, a broken rule, or a reference to another campaign's entity (`cross_campaign_reference`)",
        503: "database unavailable",
    }.items()
}
ERROR_RESPONSES[200] = {"model": CommandResultBody, "description": ERROR_RESPONSES[200]["description"]}


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


def endpoint_for(handler: Handler[Any]) -> Callable[..., JSONResponse]:
    """A sync endpoint (FastAPI runs it in its thread pool) whose body parameter is the command model."""

    def endpoint(request: Request, command: Command, grant: Grant) -> JSONResponse:
        result = request.app.state.system.service.handle(command, grant, correlation_id=request.state.correlation_id)
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
