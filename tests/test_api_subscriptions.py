"""Admin routes over outbound subscriptions: CRUD, secret shown once, rotation, replay, the
delivery log, and problem+json for bad input."""

from __future__ import annotations

import asyncio

from standardwebhooks.webhooks import Webhook

from hub.outbound.deliverer import Deliverer
from hub.outbound.store import SubscriptionStore
from hub.settings import Settings
from hub.store import Store
from hub.store.keys import Scope
from tests.api_support import api_client, assert_problem
from tests.factories import make_item
from tests.outbound_support import Receiver

SETTINGS = Settings(database_url="sqlite://", background_tasks=False)
NEW = {"url": "https://hooks.example/in", "event_types": ["item.created"], "filter": {"source": ["acme-jira"]}}


def test_create_list_get_patch_delete(store: Store) -> None:
    with api_client(store, scope=Scope.admin, settings=SETTINGS) as client:
        created = client.post("/v1/subscriptions", json=NEW)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_")
        assert body["status"] == "active" and body["filter"]["source"] == ["acme-jira"]
        sub_id = body["id"]
        shown = client.get(f"/v1/subscriptions/{sub_id}").json()
        assert "secret" not in shown and shown["url"] == NEW["url"]  # the secret is shown once only
        assert [s["id"] for s in client.get("/v1/subscriptions").json()] == [sub_id]

        patched = client.patch(
            f"/v1/subscriptions/{sub_id}", json={"status": "disabled", "event_types": ["item.deleted"]}
        )
        assert patched.status_code == 200 and patched.json()["status"] == "disabled"
        assert patched.json()["event_types"] == ["item.deleted"]
        assert client.patch(f"/v1/subscriptions/{sub_id}", json={"status": "active"}).json()["disabled_reason"] is None

        assert client.delete(f"/v1/subscriptions/{sub_id}").status_code == 204
        assert_problem(client.get(f"/v1/subscriptions/{sub_id}"), 404)
        assert_problem(client.delete(f"/v1/subscriptions/{sub_id}"), 404)


def test_bad_input_is_a_problem(store: Store) -> None:
    strict = Settings(database_url="sqlite://", background_tasks=False, egress_allow=[], egress_allow_http=False)
    with api_client(store, scope=Scope.admin, settings=strict) as client:
        for url in ("https://169.254.169.254/latest", "https://10.0.0.1/hook", "http://hooks.example/in"):
            body = assert_problem(client.post("/v1/subscriptions", json={**NEW, "url": url}), 422)
            assert "HUB_EGRESS_ALLOW" in body["detail"]
        assert_problem(client.post("/v1/subscriptions", json={**NEW, "event_types": ["item.exploded"]}), 422)
        assert_problem(client.post("/v1/subscriptions", json={**NEW, "event_types": []}), 422)
        assert_problem(client.post("/v1/subscriptions", json={**NEW, "filter": {"kind": ["spaceship"]}}), 422)
        assert_problem(client.post("/v1/subscriptions", json={**NEW, "filter": {"colour": ["red"]}}), 422)
        assert_problem(client.post("/v1/subscriptions", json={**NEW, "url": "not a url"}), 422)
        sub_id = client.post("/v1/subscriptions", json=NEW).json()["id"]
        assert_problem(client.patch(f"/v1/subscriptions/{sub_id}", json={"url": "https://127.0.0.1/x"}), 422)
        assert_problem(client.post(f"/v1/subscriptions/{sub_id}/replay", json={"from_seq": 0}), 422)


def test_read_keys_cannot_manage_subscriptions(store: Store) -> None:
    with api_client(store, scope=Scope.read, settings=SETTINGS) as client:
        assert_problem(client.get("/v1/subscriptions"), 403)
        assert_problem(client.post("/v1/subscriptions", json=NEW), 403)


def test_rotate_replay_and_the_delivery_log(store: Store) -> None:
    with api_client(store, scope=Scope.admin, settings=SETTINGS) as client:
        created = client.post("/v1/subscriptions", json=NEW).json()
        sub_id, old_secret = created["id"], created["secret"]
        store.items.apply([make_item(1), make_item(2)])
        receiver = Receiver(old_secret)

        async def deliver() -> None:
            deliverer = Deliverer(SubscriptionStore(store.engine), transport=receiver.transport())
            await deliverer.run_once()
            await deliverer.aclose()

        asyncio.run(deliver())
        log = client.get(f"/v1/subscriptions/{sub_id}/deliveries", params={"limit": 1}).json()
        assert [d["seq"] for d in log["deliveries"]] == [2]  # newest first
        older = client.get(f"/v1/subscriptions/{sub_id}/deliveries", params={"before": log["next_before"]}).json()
        assert [(d["seq"], d["status"], d["response_code"], d["attempt"]) for d in older["deliveries"]] == [
            (1, "delivered", 204, 1)
        ]
        assert older["next_before"] is None

        rotated = client.post(f"/v1/subscriptions/{sub_id}/rotate-secret").json()
        assert rotated["secret"] != old_secret
        replayed = client.post(f"/v1/subscriptions/{sub_id}/replay", json={"from_seq": 2}).json()
        assert replayed["cursor"] == 1
        asyncio.run(deliver())
        assert receiver.seqs() == [1, 2, 2]  # verified with the old secret during the grace period
        Webhook(rotated["secret"]).verify(receiver.bodies[-1], receiver.headers[-1])
        assert_problem(client.get("/v1/subscriptions/sub_nope/deliveries"), 404)
