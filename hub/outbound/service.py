"""What the admin routes call: subscription CRUD, rotation, replay, the delivery log."""

from __future__ import annotations

from datetime import timedelta

from connectors.egress import EgressPolicy, EgressRefused
from hub.outbound.deliverer import Deliverer
from hub.outbound.models import (
    Delivery,
    Subscription,
    SubscriptionCreate,
    SubscriptionPatch,
    SubscriptionWithSecret,
)
from hub.outbound.store import SubscriptionNotFound, SubscriptionStore
from hub.settings import Settings
from hub.store import Store

__all__ = ["InvalidSubscription", "OutboundService", "SubscriptionNotFound", "build_deliverer", "egress_policy"]


class InvalidSubscription(ValueError):
    """The subscription cannot be saved as given (e.g. its URL points where the hub may not send)."""


def egress_policy(settings: Settings) -> EgressPolicy:
    return EgressPolicy(allow=tuple(settings.egress_allow), allow_http=settings.egress_allow_http)


def build_deliverer(store: Store, settings: Settings) -> Deliverer:
    return Deliverer(
        SubscriptionStore(store.engine),
        policy=egress_policy(settings),
        timeout=settings.outbound_timeout_seconds,
        schedule=settings.outbound_retry_schedule,
        jitter=settings.outbound_retry_jitter,
        lease_ttl=timedelta(seconds=settings.outbound_lease_seconds),
        batch_size=settings.outbound_batch_size,
    )


class OutboundService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.subscriptions = SubscriptionStore(store.engine)
        self.policy = egress_policy(settings)
        self.grace = timedelta(seconds=settings.outbound_secret_grace_seconds)

    def _check_url(self, url: str) -> None:
        # Save-time check (scheme, literal addresses); names are checked again at every connect.
        try:
            self.policy.check_url_literal(url)
        except EgressRefused as exc:
            raise InvalidSubscription(str(exc)) from None

    def create(self, body: SubscriptionCreate) -> SubscriptionWithSecret:
        url = str(body.url)
        self._check_url(url)
        created, secret = self.subscriptions.create(url, body.event_types, body.filter, body.description)
        return SubscriptionWithSecret(**created.model_dump(), secret=secret)

    def get(self, sub_id: str) -> Subscription:
        return self.subscriptions.get(sub_id)

    def list_all(self) -> list[Subscription]:
        return self.subscriptions.all()

    def update(self, sub_id: str, patch: SubscriptionPatch) -> Subscription:
        values = patch.model_dump(mode="json", exclude_unset=True, exclude_none=True)
        if "url" in values:
            self._check_url(values["url"])
        return self.subscriptions.update(sub_id, values)

    def delete(self, sub_id: str) -> None:
        self.subscriptions.delete(sub_id)

    def rotate_secret(self, sub_id: str) -> SubscriptionWithSecret:
        secret = self.subscriptions.rotate_secret(sub_id, self.grace)
        return SubscriptionWithSecret(**self.subscriptions.get(sub_id).model_dump(), secret=secret)

    def replay(self, sub_id: str, from_seq: int) -> Subscription:
        return self.subscriptions.replay(sub_id, from_seq)

    def deliveries(self, sub_id: str, *, limit: int, before: int | None) -> list[Delivery]:
        return self.subscriptions.deliveries(sub_id, limit=limit, before=before)
