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
from infra.http.errors import error_responses
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


# A command's own answers; 400 (malformed JSON), 413, 422 and 503 are every route's (`COMMON_ERRORS`, on the app).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": CommandResultBody, "description": "replayed (the same command_id and payload again) or nothing to "
                                                     "change"},
    **error_responses(401, 403, 404, 409, 422, described={
        404: "the target or an entity the command refers to does not exist (`<kind>_not_found`)",
        409: "conflict with the target's state, or the command_id already used for another command "
             "(`command_id_reused`)",
        422: "invalid input (wrong type, missing field, `control_character`, `time_out_of_range`, `naive_timestamp`, "
             "...), a broken rule (its own code, e.g. `occurred_in_future`), or a reference to another campaign's "
             "entity (`cross_campaign_reference`)",
    }),
}
# The rules every command obeys across its fields, whatever its body (appended to each command's own description).
COMMAND_RULES = """**Every command**:

- `command_id` is the client's idempotency key: the same id with the same body writes once and answers the first
  result again (200, `replayed`); the same id with another body is 409 `command_id_reused`.
- `occurred_at` (when it happened in the field; default: now) and every other instant carries a UTC offset and lies
  between 2000-01-01 and 2100-01-01; `occurred_at` may not be later than now, beyond a device's clock skew of ten
  minutes (422 `occurred_in_future`). Days are `YYYY-MM-DD` between 2000-01-01 and 2099-12-31.
- No text field holds a control character (422 `control_character`); free texts (reasons, notes, descriptions,
  bodies) may hold line breaks and tabs, names and codes not.
- The actor is the token's, never the body's. The token's role must be one the command allows (403 `read_only_role`,
  `role_not_allowed`), and its unit and place scope must cover what the command touches (403 `out_of_scope`).
- The campaign of a command is the campaign of the entity it acts on (for a new entity, the campaign its body names,
  which must exist); a campaign-bound token acts only there (403 `campaign_not_allowed`). Every entity the command
  refers to must exist (404) and belong to that campaign (422 `cross_campaign_reference`).
"""


def command_router() -> APIRouter:
    router = APIRouter(prefix="/commands", tags=["commands"])
    for command in sorted(HANDLERS, key=lambda c: c.__name__):
        name = snake_case(command.__name__)
        router.add_api_route(
            f"/{name}", endpoint_for(HANDLERS[command]), methods=["POST"], status_code=201, name=name,
            operation_id=name, summary=summary(command), description=description(command),
            response_model=CommandResultBody, responses=ERROR_RESPONSES,
        )
    return router


def summary(command: type[Command]) -> str:
    doc = inspect.getdoc(command) or command.__name__
    return doc.splitlines()[0]


def description(command: type[Command]) -> str:
    """The command's docstring, then the rules every command obeys (`COMMAND_RULES`)."""
    return f"{inspect.getdoc(command) or command.__name__}\n\n{COMMAND_RULES}"


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
