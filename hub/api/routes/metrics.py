"""GET /metrics: Prometheus text format (hub/metrics.py says what is exposed and how processes add up).

Open by default, like the health probes. With HUB_METRICS_TOKEN set it needs that token as a
bearer: a dedicated scrape credential rather than an API key, because Prometheus sends one
static token, the token must not be able to read items, and checking it needs no database
(metrics matter most when the database is the problem).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from hub import metrics
from hub.api.deps import SettingsDep
from hub.api.problems import ProblemError

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request, settings: SettingsDep) -> Response:
    if settings.metrics_token is not None:
        expected = f"Bearer {settings.metrics_token.get_secret_value()}".encode()
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise ProblemError(
                401,
                detail="/metrics needs `Authorization: Bearer <HUB_METRICS_TOKEN>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
    store = getattr(request.app.state, "store", None)
    return Response(metrics.render(store.engine if store is not None else None), media_type=metrics.CONTENT_TYPE)
