"""The flow report's fast JSON equals the `FlowReport` model's, byte for byte.

GET /v1/insights/flow answers `report_json` (hub/insights/flow.py): orjson over hub/flow's
dataclasses, without a pydantic object per point. `FlowReport` stays the documented schema
and the CLI's value, so on the hand-worked dataset and on random histories the bytes must
be the model's `model_dump_json()` and must validate against the model.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter
from sqlalchemy.dialects import sqlite

from hub.db.tables import UTCDateTime
from hub.flow.metrics import Period, flow_metrics
from hub.insights.flow import _LISTED_TIME, FlowService, LoadedItems, report, report_json, with_delivery_kinds
from hub.insights.models import FlowReport
from hub.schema import StatusCategory
from hub.store import ItemQuery, Store
from tests.api_support import api_client
from tests.insights_support import seed_dataset, seed_item
from tests.test_flow_metrics import DATASET
from tests.test_insights_flow_service import NOW, random_items

FLOW_REPORT = TypeAdapter(FlowReport)


def assert_same_json(fast: bytes, model: FlowReport) -> None:
    assert fast == model.model_dump_json().encode()
    assert FLOW_REPORT.validate_json(fast) == model


QUERIES = [
    ItemQuery(),
    ItemQuery(container=["TEAM"]),
    ItemQuery(container=["NOPE"]),  # nothing matches: no percentiles, empty lists
    ItemQuery(kind=["story", "bug"], source=["acme-jira"]),
]


def test_hand_worked_dataset_fast_json_is_the_models(store: Store) -> None:
    seed_dataset(store)
    service = FlowService(store.engine)
    as_of = datetime(2026, 3, 18, tzinfo=UTC)
    periods = [Period(date(2026, 3, 4), date(2026, 3, 17)), Period(date(2026, 1, 1), date(2026, 3, 31)), None]
    for query in QUERIES:
        for period in periods:
            assert_same_json(
                service.flow_json(query, as_of=as_of, period=period), service.flow(query, as_of=as_of, period=period)
            )


def test_the_route_answers_the_models_bytes(store: Store) -> None:
    seed_dataset(store)
    # An as_of with an offset and microseconds: the route and the model both answer it in UTC.
    as_of = datetime(2026, 3, 18, 2, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    model = FlowService(store.engine).flow(
        with_delivery_kinds(ItemQuery(container=["TEAM"])),
        as_of=as_of,
        period=Period(date(2026, 3, 4), date(2026, 3, 17)),
    )
    with api_client(store) as client:
        response = client.get(
            "/v1/insights/flow",
            params={"container": "TEAM", "from": "2026-03-04", "to": "2026-03-17", "as_of": as_of.isoformat()},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == model.model_dump_json().encode()
    assert model.wip.items and model.cycle_time.points  # the lists the fast path builds are not empty


@pytest.mark.parametrize("seed", [11, 12])
def test_random_histories_fast_json_is_the_models(store: Store, seed: int) -> None:
    rng = random.Random(seed)
    container = {"id": f"c{seed}", "key": f"K{seed}", "name": "random"}
    for item in random_items(rng, 80):
        seed_item(store, item, container=container)
    service = FlowService(store.engine)
    listed = 0
    for query in (ItemQuery(container=[f"K{seed}"]), ItemQuery()):
        for start, days in ((40, 14), (0, 130), (90, 7)):
            period = Period(date(2026, 1, 5) + timedelta(days=start), date(2026, 1, 5) + timedelta(days=start + days))
            model = service.flow(query, as_of=NOW, period=period)
            assert_same_json(service.flow_json(query, as_of=NOW, period=period), model)
            listed += len(model.cycle_time.points) + len(model.lead_time.points) + len(model.wip.items)
    assert listed > 20  # the lists the fast path builds were exercised


def test_pure_figures_with_settled_items_fast_json_is_the_models() -> None:
    # The pure path (hub/flow, as the tests and the CLI's callers use it) and the per-day
    # counts of items at rest before the period, which the stored path never adds.
    period = Period(date(2026, 3, 4), date(2026, 3, 17))
    as_of = datetime(2026, 3, 18, tzinfo=UTC)
    query = with_delivery_kinds(ItemQuery(container=["TEAM"]))
    loaded = LoadedItems(list(DATASET), len(DATASET), 2, settled={StatusCategory.done: 5, StatusCategory.todo: 1})
    metrics = flow_metrics(list(DATASET), period, as_of)
    assert_same_json(report_json(metrics, query, loaded), report(metrics, query, loaded))


@pytest.mark.parametrize(
    "stored",
    ["2026-07-11 14:00:00.000000", "2026-07-11 14:00:00.250000", "2026-07-11 14:00:00", "2026-07-11T14:00:00"],
)
def test_listed_times_read_as_the_generic_utc_type_reads_them(stored: str) -> None:
    # The fast SQLite reader of the listed times (hub/insights/flow.py `_ListedTime`) gives
    # what `UTCDateTime` gives, aware in UTC.
    dialect = sqlite.dialect()
    fast = _LISTED_TIME.dialect_impl(dialect).result_processor(dialect, None)
    generic = UTCDateTime().dialect_impl(dialect).result_processor(dialect, None)
    assert fast is not None and generic is not None
    assert fast(stored) == generic(stored)
    assert fast(stored).tzinfo is UTC
    assert fast(None) is None
