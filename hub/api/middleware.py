"""ASGI middleware around every request: its request id (hub/logs.py) and latency metrics by
route template.

Plain ASGI rather than Starlette's BaseHTTPMiddleware: it adds no task and no body copy per
request, and streams pass through untouched.
"""

from __future__ import annotations

import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import metrics
from hub.logs import REQUEST_ID_HEADER, accept_request_id, request_id_var


class ObserveRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering
        request_id = accept_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        request_id_var.set(request_id)

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            metrics.http_request(scope["method"], route_template(scope), status, time.perf_counter() - started)
        # The id stays set (each request runs in its own task, so it goes no further): the
        # handler of unexpected errors, outside this middleware, logs and answers with it.


# A layer that serves a route itself and knows its full template puts it on the scope under
# this key (hub/api/routes/webhooks.py `WebhookIntakePath`: the intake's hot path), so that
# `route_template` need not work it out again for every request.
ROUTE_TEMPLATE_KEY = "opshub.route_template"


def route_template(scope: Scope) -> str:
    """The matched route's full template (`/v1/items/{item_id}`), never the raw path.

    The router puts the matched route on the scope (`scope["route"]`), but a route included
    through a prefixed router knows only its own part of the template (`/items/{item_id}`).
    The prefix is what remains of the request path once that part, filled with the request's
    path parameters, is taken off its end.
    """
    known = scope.get(ROUTE_TEMPLATE_KEY)
    if known is not None:
        return str(known)
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if not isinstance(template, str):
        return metrics.UNMATCHED_ROUTE
    try:
        filled = template.format(**{name: str(v) for name, v in scope.get("path_params", {}).items()})
    except (KeyError, IndexError, ValueError):
        return template
    path = str(scope.get("path", ""))
    if filled and path.endswith(filled):
        return path[: len(path) - len(filled)] + template
    return template
