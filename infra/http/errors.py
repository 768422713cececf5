"""The one error format of the HTTP API and the handlers that produce it.

Every error body is `{"code", "message_zh", "message_en", "details"}`: `code` is machine-readable
snake_case, the messages are for people (zh-CN first). Bad input is 400/404/405/413/422, never
500; an unreachable database is 503 `database_unavailable` with `Retry-After` (and trips the
database gate of `infra.http.availability`, so the requests after it fail fast too); only a bug is
500 (see `infra.http.app`).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.kernel.base import DomainError
from domain.kernel.edge import describe
from infra.outage import DATABASE_UNAVAILABLE

log = structlog.get_logger("dudao.http")


class ErrorBody(BaseModel):
    """What every error response carries."""

    code: str
    message_zh: str
    message_en: str
    details: dict[str, Any] = {}


# What each error status means, for the OpenAPI document; the `code`s in backticks are the body's.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "malformed request: a body that is not JSON (`malformed_json`), broken multipart form data "
         "(`malformed_request`), or an `X-Correlation-ID` that is not a UUID (`invalid_correlation_id`)",
    401: "missing, unknown, revoked or expired bearer token (`unauthenticated`, `token_expired`)",
    403: "the token's role, campaign or scope does not allow this (`read_only_role`, `role_not_allowed`, "
         "`campaign_not_allowed`, `out_of_scope`)",
    404: "the entity asked for, or one a command refers to, does not exist (`<kind>_not_found`)",
    409: "conflict with the current state, or a `command_id` reused with another payload",
    413: "request body over the limit (`payload_too_large`, `details.max_bytes`): 1 MiB, or the photo limit for an upload",
    415: "a file of a type that is not accepted",
    422: "invalid input — wrong type, missing field, a control character in any text or parameter "
         "(`control_character`), a time outside 2000–2100 or without an offset (`time_out_of_range`, ...) — "
         "or a broken rule (its own code)",
    503: "database unavailable (`database_unavailable`): retry after `Retry-After` seconds (not /health, /metrics)",
}
ERROR_CONTENT: dict[str, Any] = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def error_responses(*statuses: int, described: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for these error statuses, each the one JSON error body whatever the route answers on
    success (with FastAPI's `model=` instead, an error of an HTML or CSV route would be documented as HTML or CSV);
    `described` words a status more precisely for these routes."""
    return {s: {"description": (described or {}).get(s, ERROR_DESCRIPTIONS[s]), "content": ERROR_CONTENT}
            for s in statuses}


# What any route may answer before it runs (the request middleware of `infra.http.app`): 400 for a bad
# X-Correlation-ID, 413, 503 while the database is unreachable, and 422 for a control character in the path or query.
COMMON_ERRORS = error_responses(400, 413, 422, 503)


class Unauthenticated(DomainError):
    """No valid bearer token (未认证)."""

    status = 401


# Statuses Starlette raises itself (unknown route, wrong method, ...) → our code and messages.
_HTTP_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("malformed_request", "请求格式错误", "malformed request"),
    404: ("not_found", "请求的资源不存在", "not found"),
    405: ("method_not_allowed", "不支持该请求方法", "method not allowed"),
    413: ("payload_too_large", "请求内容过大", "request body too large"),
}

RETRY_AFTER_S = 5  # what a client is told to wait after a 503: about one probe cycle of the gate, plus margin


def error_response(status: int, code: str, message_zh: str, message_en: str,
                   details: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(code=code, message_zh=message_zh, message_en=message_en, details=details or {})
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def internal_error() -> JSONResponse:
    return error_response(500, "internal_error", "服务器内部错误", "internal server error")


def too_large(limit: int) -> JSONResponse:
    return error_response(413, "payload_too_large", "请求内容过大", "request body too large", {"max_bytes": limit})


async def on_domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc.status, exc.code, exc.message_zh, exc.message_en, dict(exc.details), headers)


def validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """The pydantic error list without `input`/`ctx`: they may echo huge or unserialisable values."""
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]


async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_details(exc)
    if any(e["type"] == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "请求体不是合法的 JSON", "request body is not valid JSON",
                              {"errors": errors})
    code, zh, en = describe(errors)  # an edge code (control_character, time_out_of_range, ...) or invalid_input
    return error_response(422, code, zh, en, {"errors": errors})


async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, zh, en = _HTTP_ERRORS.get(exc.status_code, (f"http_{exc.status_code}", "请求无法处理", str(exc.detail)))
    return error_response(exc.status_code, code, zh, en, {}, dict(exc.headers or {}))


def database_unavailable() -> JSONResponse:
    """503 for a request that needs the database while it cannot be reached."""
    return error_response(503, "database_unavailable", "数据库暂时不可用，请稍后重试",
                          "database unavailable, retry later", {"retry_after_s": RETRY_AFTER_S},
                          headers={"Retry-After": str(RETRY_AFTER_S)})


async def on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.info("request_database_unavailable", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
    gate = getattr(request.app.state, "database_gate", None)
    if gate is not None:
        gate.suspect(exc)
    return database_unavailable()


def install_error_handlers(app: FastAPI) -> None:
    """The handlers that turn every failure into the one error body, and `ErrorBody` in the OpenAPI components
    (what `error_responses` refer to)."""
    document_error_body(app)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    for exc_type in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_type, on_unavailable)


def document_error_body(app: FastAPI) -> None:
    """Add `ErrorBody` to the app's OpenAPI components once the document is built (FastAPI's way to extend it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # built once, then cached by FastAPI on `app.openapi_schema`
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault("ErrorBody", ErrorBody.model_json_schema())
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents replacing `app.openapi` to extend the schema
