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
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    for exc_type in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_type, on_unavailable)
