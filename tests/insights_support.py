"""Seeding the store with tests/test_flow_metrics.py's designed dataset, for the insights tests.

Each `FlowItem` of that dataset becomes a stored item (`store.items.apply`) with the same
created_at, status, container and completed_at, and its history becomes stored transitions
(`TransitionStore.record`). Every item gets the status of its last transition, and its
updated_at at or after that transition, so the facts `apply()` itself adds (a first sighting,
an observed change) repeat the history's last status and change no figure.

L and M of the dataset have no history at all, as items stored before the hub kept history
have: their stored transitions are removed after seeding.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete

from hub.db.engine import write_transaction
from hub.db.tables import status_transitions
from hub.flow.metrics import FlowItem
from hub.schema import StatusCategory
from hub.store import Store
from hub.store.flow_facts import refresh_flow_facts
from hub.store.transitions import TransitionStore
from tests.factories import make_item
from tests.test_flow_metrics import DATASET, NOW

SOURCE = "acme-jira"
TEAM = {"id": "10001", "key": "TEAM", "name": "Team"}


def hub_id(name: str, source: str = SOURCE) -> str:
    return f"{source}:{name}"


def seed_item(
    store: Store,
    flow_item: FlowItem,
    *,
    source: str = SOURCE,
    tool: str = "jira",
    container: dict[str, Any] | None = None,
    kind: str = "story",
    prefix: str = "",
    **fields: Any,
) -> str:
    """Store one dataset item (renamed `prefix + name`) and its history; returns its hub id."""
    name = prefix + flow_item.item_id
    item_id = hub_id(name, source)
    facts = [dataclasses.replace(fact, item_id=item_id) for fact in flow_item.history.transitions]
    last = facts[-1] if facts else None
    category: StatusCategory = flow_item.category
    updated_at: datetime = max([flow_item.created_at, *(f.at for f in facts)]) if facts else flow_item.created_at
    status_name = (last.to_name if last is not None else None) or category.value
    store.items.apply(
        [
            make_item(
                name,
                source=source,
                tool=tool,
                key=f"{container['key'] if container else 'TEAM'}-{name}",
                kind=kind,
                created_at=flow_item.created_at,
                updated_at=updated_at,
                completed_at=flow_item.completed_at,
                status={"category": category.value, "name": status_name},
                container=container or TEAM,
                **fields,
            )
        ]
    )
    if facts:
        TransitionStore(store.engine).record(facts)
    else:
        with write_transaction(store.engine) as conn:
            conn.execute(delete(status_transitions).where(status_transitions.c.item_id == item_id))
            refresh_flow_facts(conn, [item_id])  # a direct write: the facts follow the history
    return item_id


def seed_dataset(store: Store, **kwargs: Any) -> list[str]:
    return [seed_item(store, flow_item, **kwargs) for flow_item in DATASET]


AS_OF = NOW
BEFORE_NOW = NOW - timedelta(days=1)
