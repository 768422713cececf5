"""Query and path parameters at the edge: instants and days to read at, and no control characters anywhere.

A query is as hostile as a command body: `?now=0.5` must not read as 1970, `?now=9999-12-31T23:59:59-14:00`
must not overflow the ledger's clock, a period from year 1 to 9999 must not be walked day by day,
and a NUL byte in any parameter must not reach PostgreSQL (which refuses it with a 500 today). So:

- `ReadInstant` (an `as_of` parameter; `now` is its deprecated alias, `read_at`): an ISO 8601 date-time,
  or a date alone (midnight), with or without an offset — without one it is read in the campaign's time
  zone (`queries.instant`) — between 2000-01-01 and 2100-01-01; never a number;
- `RestoreUnencodedPlus`: an ASGI middleware that gives back the `+` a client forgot to encode in an
  instant's offset (`?as_of=2021-12-14T09:00:00+08:00` arrives as `...09:00:00 08:00`: a space before
  two digits at the end of a date-time is an unencoded `+`), for every query parameter of every route;
- `ReadDay` (a period's bounds): `YYYY-MM-DD`, 2000-01-01 to 2099-12-31;
- `RefuseControlCharacters`: an ASGI middleware that answers 422 `control_character` for any
  control character (as `domain.kernel.text` defines them for single-line text) in the path or in
  a query parameter's name or value, before any route runs.

Each refusal is the API's one error body, with the code and the parameter named (`domain.kernel.edge`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Query, Response
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.kernel.base import DomainError
from domain.kernel.edge import describe
from domain.kernel.instants import day_in_range, day_text, in_sane_range, instant_text
from domain.kernel.text import refused_character
from infra.http.errors import error_response


# A query string's `+` that a client forgot to encode arrives as a space: `...T09:00:00 08:00` meant `+08:00`.
_UNENCODED_PLUS = re.compile(r"(T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?) (\d{2}(?::?\d{2})?)$")


def unencoded_plus(value: Any) -> Any:
    """An instant whose offset's `+` arrived as a space (a space before two digits at its end) with the `+` back."""
    return _UNENCODED_PLUS.sub(r"\1+\2", value.strip()) if isinstance(value, str) else value


def _instant_or_day(value: Any) -> Any:
    return instant_text(value, day_allowed=True)


class ReadInstant(datetime):
    """An instant to read at, as a parameter (see the module's docstring); the value is a plain `datetime`.

    A class, not an `Annotated` alias: FastAPI drops an alias's validators from a required parameter
    declared `x: Alias = Query(...)`, so `?from=0.5` would read as 1970 again.
    """

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            in_sane_range, core_schema.no_info_before_validator_function(_instant_or_day, core_schema.datetime_schema()))


class ReadDay(date):
    """A calendar day, as a parameter: `YYYY-MM-DD`, 2000-01-01 to 2099-12-31; the value is a plain `date`."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            day_in_range, core_schema.no_info_before_validator_function(day_text, core_schema.date_schema()))


AsOf = Query(None, description="ISO-8601 instant (or a date: its midnight) between 2000 and 2100; without an offset "
                               "it is read in the campaign's time zone. Default: now.")
Now = Query(None, description="ISO-8601 instant to read the clock at (or a date: its midnight), between 2000 and 2100; "
                              "without an offset, in the campaign's time zone. Default: now.")
DeprecatedNow = Query(None, deprecated=True, description="Deprecated alias of `as_of` (the name these routes used "
                                                        "before; accepted for one release, answered with a "
                                                        "`Deprecation` header). Give `as_of` instead.")


def read_at(response: Response, as_of: ReadInstant | None = AsOf,
            now: ReadInstant | None = DeprecatedNow) -> datetime | None:
    """The instant a query reads at: `as_of`, or the deprecated `now` when only it is given (both, differing: 422)."""
    if now is None:
        return as_of
    response.headers["Deprecation"] = "true"  # RFC 9745: the parameter this request used is deprecated
    if as_of is not None and as_of != now:
        raise DomainError("as_of_conflict", "as_of 与已弃用的 now 不一致，请只给出 as_of",
                          "as_of and the deprecated now disagree; give as_of only")
    return as_of or now


def refused_parameter(scope: Scope) -> tuple[str, str] | None:
    """(where, name) of the first path or query parameter holding a control character, or None."""
    if refused_character(scope.get("path", ""), multiline=False) is not None:
        return "path", "path"
    query = scope.get("query_string", b"").decode("utf-8", "replace")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if any(refused_character(text, multiline=False) is not None for text in (name, value)):
            return "query", name
    return None


class RestoreUnencodedPlus:
    """Rewrites a query parameter whose date-time lost its offset's `+` to a space back to the `+` it was."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            pairs = parse_qsl(scope["query_string"].decode("utf-8", "replace"), keep_blank_values=True)
            fixed = [(name, unencoded_plus(value)) for name, value in pairs]
            if fixed != pairs:
                scope = {**scope, "query_string": urlencode(fixed).encode()}
        await self.app(scope, receive, send)


class RefuseControlCharacters:
    """422 `control_character` for a request whose path or query holds a control character."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (refused := refused_parameter(scope)) is not None:
            errors = [{"loc": list(refused), "msg": "a control character is not allowed here",
                       "type": "control_character"}]
            code, zh, en = describe(errors)
            await error_response(422, code, zh, en, {"errors": errors})(scope, receive, send)
            return
        await self.app(scope, receive, send)
