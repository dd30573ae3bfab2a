"""Admin routes over outbound webhook subscriptions (hub/outbound/service.py does the work)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from hub.api.deps import AdminKey, PageLimit, SettingsDep, StoreDep
from hub.api.problems import ProblemError, problem_responses
from hub.outbound.models import (
    DeliveryPage,
    ReplayRequest,
    Subscription,
    SubscriptionCreate,
    SubscriptionPatch,
    SubscriptionWithSecret,
)
from hub.outbound.service import InvalidSubscription, OutboundService, SubscriptionNotFound

router = APIRouter(tags=["subscriptions"], responses=problem_responses(404, 422))

SubscriptionId = Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


def _service(store: StoreDep, settings: SettingsDep, _key: AdminKey) -> OutboundService:
    return OutboundService(store, settings)


ServiceDep = Annotated[OutboundService, Depends(_service)]


def _not_found(sub_id: str) -> ProblemError:
    return ProblemError(404, detail=f"no subscription {sub_id!r}")


def _invalid(exc: InvalidSubscription) -> ProblemError:
    return ProblemError(422, detail=str(exc))


@router.post("/subscriptions", status_code=201)
def create_subscription(service: ServiceDep, body: SubscriptionCreate) -> SubscriptionWithSecret:
    """Subscribe a URL to events from now on. The answer shows the signing secret, once."""
    try:
        return service.create(body)
    except InvalidSubscription as exc:
        raise _invalid(exc) from None


@router.get("/subscriptions")
def list_subscriptions(service: ServiceDep) -> list[Subscription]:
    return service.list_all()


@router.get("/subscriptions/{sub_id}")
def get_subscription(service: ServiceDep, sub_id: SubscriptionId) -> Subscription:
    try:
        return service.get(sub_id)
    except SubscriptionNotFound:
        raise _not_found(sub_id) from None


@router.patch("/subscriptions/{sub_id}")
def update_subscription(service: ServiceDep, sub_id: SubscriptionId, patch: SubscriptionPatch) -> Subscription:
    """Change fields; `{"status": "active"}` re-enables a disabled subscription where it stopped."""
    try:
        return service.update(sub_id, patch)
    except SubscriptionNotFound:
        raise _not_found(sub_id) from None
    except InvalidSubscription as exc:
        raise _invalid(exc) from None


@router.delete("/subscriptions/{sub_id}", status_code=204)
def delete_subscription(service: ServiceDep, sub_id: SubscriptionId) -> Response:
    try:
        service.delete(sub_id)
    except SubscriptionNotFound:
        raise _not_found(sub_id) from None
    return Response(status_code=204)


@router.post("/subscriptions/{sub_id}/rotate-secret")
def rotate_secret(service: ServiceDep, sub_id: SubscriptionId) -> SubscriptionWithSecret:
    """A new secret, shown once; the old one keeps signing too for HUB_OUTBOUND_SECRET_GRACE_SECONDS."""
    try:
        return service.rotate_secret(sub_id)
    except SubscriptionNotFound:
        raise _not_found(sub_id) from None


@router.post("/subscriptions/{sub_id}/replay")
def replay(service: ServiceDep, sub_id: SubscriptionId, body: ReplayRequest) -> Subscription:
    """Deliver again every matching change from `from_seq` on (the cursor only moves back)."""
    try:
        return service.replay(sub_id, body.from_seq)
    except SubscriptionNotFound:
        raise _not_found(sub_id) from None


@router.get("/subscriptions/{sub_id}/deliveries")
def list_deliveries(
    service: ServiceDep,
    sub_id: SubscriptionId,
    limit: PageLimit,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Only deliveries with a smaller id.")] = None,
) -> DeliveryPage:
    """Delivery attempts, newest first (status, response code, latency, attempt)."""
    try:
        found = service.deliveries(sub_id, limit=limit, before=before)
    except SubscriptionNotFound:
        raise _not_found(sub_id) from None
    next_before = found[-1].id if len(found) == limit else None
    return DeliveryPage(deliveries=found, next_before=next_before)
