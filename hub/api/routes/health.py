"""Health probes, open without an API key: liveness (healthz) and readiness (readyz)."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api.deps import StoreDep
from hub.api.models import HealthStatus
from hub.api.problems import ProblemError, problem_responses

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> HealthStatus:
    """The process is alive (touches nothing else, so a slow database never fails it)."""
    return HealthStatus(status="ok")


@router.get("/readyz", responses=problem_responses(503))
def readyz(store: StoreDep) -> HealthStatus:
    """The database is reachable and migrated to the schema this code expects."""
    ready, reason = store.is_ready()
    if not ready:
        raise ProblemError(503, detail=reason)
    return HealthStatus(status="ok")
