"""Every error leaves the API as RFC 9457 `application/problem+json`.

Exceptions are mapped here, at the boundary, so lower layers' types (the store's
`InvalidCursor`, pydantic's validation errors, anything unexpected) never leak to clients.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.api.models import Problem, ProblemFieldError
from hub.db.engine import StatementTimeout
from hub.logs import REQUEST_ID_HEADER, request_id_var
from hub.store import InvalidCursor

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)


def status_title(status: int) -> str:
    """The HTTP reason phrase, the title RFC 9457 asks for with the `about:blank` type."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ProblemError(Exception):
    """Raise from a route or dependency to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str | None = None,
        detail: str | None = None,
        *,
        type: str = "about:blank",
        headers: Mapping[str, str] | None = None,
        errors: list[ProblemFieldError] | None = None,
    ) -> None:
        super().__init__(detail or title or status_title(status))
        self.problem = Problem(
            type=type, title=title or status_title(status), status=status, detail=detail, errors=errors
        )
        self.headers = dict(headers or {})


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        content=problem.model_dump_json(by_alias=True, exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_errors(errors: Any) -> list[ProblemFieldError]:
    """Name each bad parameter: pydantic's loc is (where, name, *position inside it)."""
    found: list[ProblemFieldError] = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        where = loc[0] if loc else "request"
        name = loc[1] if len(loc) > 1 else where
        detail = str(error.get("msg", "invalid"))
        if len(loc) > 2:  # one value of a repeated parameter, e.g. the second `kind`
            detail = f"value {'.'.join(loc[2:])}: {detail}"
        found.append(ProblemFieldError.model_validate({"in": where, "name": name, "detail": detail}))
    return found


async def _on_problem(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.problem, exc.headers)


async def _on_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != status_title(exc.status_code) else None
    problem = Problem(title=status_title(exc.status_code), status=exc.status_code, detail=detail)
    return problem_response(problem, exc.headers)


async def _on_validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    names = ", ".join(dict.fromkeys(e.name for e in errors))
    problem = Problem(
        title=status_title(422),
        status=422,
        detail=f"invalid request parameter(s): {names}",
        errors=errors,
    )
    return problem_response(problem)


async def _on_invalid_cursor(_request: Request, exc: Exception) -> Response:
    return problem_response(Problem(title=status_title(400), status=400, detail=str(exc)))


async def _on_statement_timeout(_request: Request, exc: Exception) -> Response:
    # The database is healthy; this request asked for more than a read may cost. Say so,
    # rather than a 500 that reads like a bug.
    problem = Problem(
        title=status_title(503),
        status=503,
        detail=f"{exc}; narrow the filters (fewer values, a time window) or try again later",
    )
    return problem_response(problem, {"Retry-After": "5"})


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # Log the details for operators; tell the client nothing about the internals.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    # This handler runs outside the request id middleware (Starlette's outermost layer): the
    # id is still in the request's context, and the client gets it to quote.
    request_id = request_id_var.get()
    return problem_response(
        Problem(title=status_title(500), status=500, detail="an unexpected error occurred; it has been logged"),
        {REQUEST_ID_HEADER: request_id} if request_id else None,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error response of `app` a problem document."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(InvalidCursor, _on_invalid_cursor)
    app.add_exception_handler(StatementTimeout, _on_statement_timeout)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses (see app.problem_openapi)."""
    descriptions = {
        400: "Bad request (e.g. a cursor this API did not issue for this query)",
        401: "Missing, unknown or revoked API key",
        403: "The API key lacks the scope this route needs",
        404: "No such resource",
        422: "A request parameter is invalid; `errors` names each one",
        500: "Unexpected server error (details are logged, never returned)",
        503: "Not ready, or a read ran past the statement timeout (retry later or narrow the filters)",
    }
    return {
        status: {"model": Problem, "description": descriptions.get(status, status_title(status))} for status in statuses
    }
