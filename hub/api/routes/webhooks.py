"""POST /webhooks/{source}: deliveries from the tools (no API key: the connector verifies).

The body is read with a size cap (413 past it), handed to the intake, which verifies the
signature and commits the raw delivery to the inbox; only then is it 202. The inbox worker
applies it in the background. No secret ever travels in the URL.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from hub import metrics
from hub.api.deps import RuntimeDep, get_runtime
from hub.api.middleware import ROUTE_TEMPLATE_KEY
from hub.api.models import WebhookAccepted
from hub.api.params import NO_NUL
from hub.api.problems import ProblemError, problem_response, problem_responses
from hub.group_commit import CommitFailed
from hub.logs import log_extra
from hub.webhooks import IntakeError

log = logging.getLogger("opshub.webhooks")

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

SourceName = Annotated[str, Path(description="Configured source name.", pattern=NO_NUL, max_length=100)]


async def _read_capped(raw_headers: Sequence[tuple[bytes, bytes]], receive: Receive, limit: int) -> bytes:
    """The request body, 413 past `limit` (declared or streamed), read straight from the ASGI
    messages as Starlette's `Request.stream` reads them (the same ClientDisconnect when the
    client leaves), without a Request object per delivery."""
    length = next((value for name, value in raw_headers if name == b"content-length"), None)
    declared = None if length is None else length.decode("latin-1")  # str.isdigit, as before
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ProblemError(413, detail=f"webhook bodies are limited to {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ProblemError(413, detail=f"webhook bodies are limited to {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


@router.post(
    "/{source}",
    status_code=202,
    response_model=WebhookAccepted,
    responses=problem_responses(400, 401, 404, 413, 503),
)
async def receive_webhook(source: SourceName, request: Request) -> Response:
    """Verify and durably store one delivery; 202 only once it is committed (with the deliveries
    that arrived at the same time: hub/group_commit.py); 503 with Retry-After when it could not be.

    The hot path of the intake: the runtime is read without a dependency, the body and the
    headers straight from the ASGI scope and messages, and the answer is written with orjson
    as a ready Response (FastAPI then skips validating and serialising a response model:
    https://fastapi.tiangolo.com/advanced/response-directly/); the OpenAPI document still
    shows WebhookAccepted.
    """
    runtime = await get_runtime(request)
    known = source in runtime.config.sources
    raw_headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    try:
        body = await _read_capped(raw_headers, request.receive, runtime.intake.max_body_bytes)
        # The headers as Starlette's `Headers.items()` decodes them (latin-1), by lower-case name,
        # without building a Headers object per delivery.
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw_headers}
        result = await runtime.intake.accept(source, headers, body)
    except CommitFailed as exc:
        # Its group was not committed: nothing is acknowledged; the tool delivers it again.
        metrics.webhook_received(source, "error", known_source=known)
        raise ProblemError(
            503, title="Not stored", detail=f"the delivery could not be stored: {exc}", headers={"Retry-After": "5"}
        ) from None
    except ProblemError as exc:
        metrics.webhook_received(source, _outcome(exc.problem.status, known), known_source=known)
        raise
    except IntakeError as exc:
        metrics.webhook_received(source, _outcome(exc.status, known), known_source=known)
        raise ProblemError(exc.status, title=exc.title, detail=exc.detail) from None
    except Exception:
        metrics.webhook_received(source, "error", known_source=known)
        raise
    metrics.webhook_received(source, "duplicate" if result.duplicate else "accepted")
    if log.isEnabledFor(logging.INFO):  # log_extra's dict is built only when the line is written
        log.info(
            "webhook %s of %s stored%s",
            result.delivery_id,
            source,
            " (a duplicate: already stored)" * result.duplicate,
            extra=log_extra(source=source, delivery_id=result.delivery_id),
        )
    content = orjson.dumps({"delivery_id": result.delivery_id, "duplicate": result.duplicate})
    return Response(content, status_code=202, media_type="application/json")


def _outcome(status: int, known_source: bool) -> str:
    """An intake refusal as the webhook counter's `outcome` label."""
    if not known_source:
        return "unknown_source"
    return {401: "rejected", 413: "too_large"}.get(status, "invalid")


@router.get("/{source}", response_class=PlainTextResponse, responses=problem_responses(404, 405))
def probe_webhook(source: SourceName, request: Request, runtime: RuntimeDep) -> str:
    """Subscription probes (e.g. Productboard's `validationToken`), answered as plain text."""
    try:
        return runtime.intake.probe(source, dict(request.query_params))
    except IntakeError as exc:
        raise ProblemError(exc.status, title=exc.title, detail=exc.detail) from None


PREFIX = "/webhooks/"
ROUTE_TEMPLATE = "/webhooks/{source}"


class WebhookIntakePath:
    """ASGI middleware: `POST /webhooks/{source}` of a configured source, served by
    `receive_webhook` without FastAPI's router.

    The intake is the hub's hot path (hundreds of POSTs a second), and on it FastAPI's own
    layers (route matching, dependency solving, the exception middleware, the exit stack) cost
    more CPU than the work: verifying, parsing and storing the delivery. This layer sits
    inside `ObserveRequests` (so request ids and latency metrics are kept: it puts the route
    on the scope as the router would) and calls the same route function with a Starlette
    `Request`; a ProblemError becomes the same problem+json answer. An unexpected exception
    propagates to the app's 500 handler, as from the route. Every other request, and a POST
    the route would refuse before running (an unknown source, a runtime not started yet),
    goes down the usual stack, so those answers are FastAPI's as before.
    https://asgi.readthedocs.io/en/latest/specs/www.html
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = _post_route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        source = self._source(scope)
        if source is None:
            await self.app(scope, receive, send)
            return
        scope["route"], scope["path_params"] = self.route, {"source": source}
        scope[ROUTE_TEMPLATE_KEY] = ROUTE_TEMPLATE
        try:
            response = await receive_webhook(source, Request(scope, receive))
        except ProblemError as exc:
            response = problem_response(exc.problem, exc.headers)
        await response(scope, receive, send)

    @staticmethod
    def _source(scope: Scope) -> str | None:
        """The configured source this request posts to, or None: not for this path."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # the router matches the path below root_path
            path = path[len(root) :]
        if not path.startswith(PREFIX):
            return None
        source = path[len(PREFIX) :]
        runtime = getattr(scope["app"].state, "runtime", None)
        if runtime is None or source not in runtime.config.sources:
            return None
        return source


def _post_route() -> BaseRoute:
    """This router's `POST /webhooks/{source}` (its `path_format` names the route in metrics)."""
    for route in router.routes:
        if getattr(route, "path", None) == ROUTE_TEMPLATE and "POST" in getattr(route, "methods", ()):
            return route
    raise LookupError("no POST /webhooks/{source} route")
