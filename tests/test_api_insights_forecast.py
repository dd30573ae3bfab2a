"""GET /v1/insights/forecast: a Productboard feature whose delivery work is in Jira and GitHub.

The feature `acme-pb:F1` is implemented by 4 open Jira stories (team TEAM) and 3 open GitHub
issues (repository org/app), linked the two ways /v1/roadmap follows (a link the story states,
a parent the issue names). Over the 12 whole weeks before the forecast starts, TEAM finished
2 items every week and org/app 1, so the containers' combined throughput is k = 3 every
week: n = 7 items take ceil(7 / 3) = 3 weeks in every trial, at every percentile.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.db.engine import write_transaction
from hub.db.tables import status_transitions
from hub.flow.forecast import HowMany, WhenDone, how_many, when_done
from hub.flow.history import Transition
from hub.schema import StatusCategory as C
from hub.store import Store
from hub.store.transitions import TransitionStore
from tests.api_support import api_client, assert_problem
from tests.factories import make_item

AS_OF = date(2026, 3, 18)  # a Wednesday: history is the 12 weeks Dec 22 2025 .. Mar 15 2026
FIRST_MONDAY = date(2026, 3, 16) - timedelta(weeks=12)
TEAM = {"id": "10001", "key": "TEAM", "name": "Team"}
REPO = {"id": "org/app", "key": "org/app", "name": "org/app"}
FEATURE = "acme-pb:F1"


def _at(day: date, hours: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hours)


def _done_item(store: Store, native_id: str, container: dict[str, str], done_on: date, **kw: Any) -> None:
    """A delivery item started the day before `done_on` and done at noon on it."""
    source, tool = ("acme-gh", "github") if container is REPO else ("acme-jira", "jira")
    item_id = f"{source}:{native_id}"
    done_at, started = _at(done_on, 12), _at(done_on - timedelta(days=1))
    store.items.apply(
        [
            make_item(
                native_id,
                source=source,
                tool=tool,
                kind="story",
                container=container,
                created_at=started - timedelta(days=2),
                updated_at=done_at,
                status={"category": "done", "name": "done"},
                **kw,
            )
        ]
    )
    TransitionStore(store.engine).record(
        [
            Transition(item_id, started, C.in_progress, "in_progress", C.todo, "todo"),
            Transition(item_id, done_at, C.done, "done", C.in_progress, "in_progress"),
        ]
    )


def _open_item(store: Store, native_id: str, container: dict[str, str], *, history: bool, **kw: Any) -> str:
    source, tool = ("acme-gh", "github") if container is REPO else ("acme-jira", "jira")
    item_id = f"{source}:{native_id}"
    at = _at(AS_OF - timedelta(days=3))
    store.items.apply(
        [
            make_item(
                native_id,
                source=source,
                tool=tool,
                **{
                    "kind": "task",
                    "container": container,
                    "created_at": at,
                    "updated_at": at,
                    "status": {"category": "todo", "name": "todo"},
                    **kw,
                },
            )
        ]
    )
    with write_transaction(store.engine) as conn:  # as stored before the hub kept history
        conn.execute(status_transitions.delete().where(status_transitions.c.item_id == item_id))
    if history:
        TransitionStore(store.engine).record([Transition(item_id, at, C.todo, "todo")])
    return item_id


def seed(store: Store, per_week: dict[str, list[int]] | None = None) -> list[str]:
    """The feature, its 7 open items, and the containers' weekly completions (default 2 and 1)."""
    weekly = per_week or {"TEAM": [2] * 12, "REPO": [1] * 12}
    store.items.apply(
        [
            make_item(
                "F1",
                source="acme-pb",
                tool="productboard",
                kind="feature",
                key=None,
                container={"id": "prod-1", "key": "PROD", "name": "Product"},
                status={"category": "in_progress", "name": "In progress"},
            )
        ]
    )
    for name, container in (("TEAM", TEAM), ("REPO", REPO)):
        for week, count in enumerate(weekly[name]):
            for n in range(count):
                _done_item(store, f"{name}-{week}-{n}", container, FIRST_MONDAY + timedelta(weeks=week, days=n % 5))
    implements = [{"type": "implements", "target_id": FEATURE}]
    remaining = [_open_item(store, f"OPEN-{n}", TEAM, history=n != 0, links=implements) for n in range(4)] + [
        _open_item(store, f"gh-{n}", REPO, history=n != 0, parent_id=FEATURE) for n in range(3)
    ]
    # Done and cancelled work under the feature is not remaining.
    _done_item(store, "OLD", TEAM, FIRST_MONDAY - timedelta(weeks=2), links=implements)
    _open_item(store, "DROPPED", TEAM, history=True, links=implements, status={"category": "cancelled", "name": "x"})
    return sorted(remaining)


def _forecast(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/insights/forecast", params={"as_of": AS_OF.isoformat(), **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def seeded(store: Store) -> Any:
    remaining = seed(store)
    with api_client(store) as client:
        yield client, remaining


def test_constant_throughput_gives_ceil_n_over_k_weeks_at_every_percentile(seeded: Any) -> None:
    client, remaining = seeded
    body = _forecast(client, item=FEATURE)
    assert body["remaining"] == 7 and body["remaining_items"] == remaining
    assert {i.split(":")[0] for i in remaining} == {"acme-jira", "acme-gh"}  # two tools
    weeks = math.ceil(7 / 3)
    assert body["weeks"] == {"p50": weeks, "p85": weeks, "p95": weeks}
    due = (AS_OF + timedelta(weeks=weeks)).isoformat()
    assert body["dates"] == {"p50": due, "p85": due, "p95": due}
    assert body["reason"] is None
    assert body["trials"] == 10_000 and body["seed"] == 0
    assert body["items_without_history"] == 2
    basis = body["basis"]
    assert basis["weekly_throughput"] == [3] * 12
    assert basis["history_weeks"] == 12
    assert basis["containers"] == ["10001", "org/app"]
    assert (basis["history_from"], basis["history_to"]) == ("2025-12-22", "2026-03-15")


def test_how_many_in_n_weeks_for_a_filter(seeded: Any) -> None:
    client, _ = seeded
    body = _forecast(client, weeks=4, container="TEAM")
    assert body["items"] == {"p50": 8, "p85": 8, "p95": 8}
    assert body["basis"]["weekly_throughput"] == [2] * 12
    assert _forecast(client, weeks=4)["items"] == {"p50": 12, "p85": 12, "p95": 12}


def test_same_seed_same_answer_and_the_pure_forecast_on_the_basis(store: Store) -> None:
    seed(store, {"TEAM": [0, 3, 1, 4, 0, 2, 5, 1, 0, 2, 3, 1], "REPO": [1, 0, 0, 2, 1, 0, 0, 1, 3, 0, 0, 1]})
    with api_client(store) as client:
        first = _forecast(client, item=FEATURE, seed=7, trials=3000)
        assert _forecast(client, item=FEATURE, seed=7, trials=3000) == first
        samples = first["basis"]["weekly_throughput"]
        assert samples == [1, 3, 1, 6, 1, 2, 5, 2, 3, 2, 3, 2]
        expected = when_done(7, samples, start=AS_OF, trials=3000, seed=7)
        assert isinstance(expected, WhenDone)
        assert first["weeks"] == {f"p{level}": w for level, w in expected.weeks.items()}
        assert first["weeks"]["p50"] <= first["weeks"]["p85"] <= first["weeks"]["p95"]
        many = _forecast(client, weeks=3, seed=11, container="TEAM")
        pure = how_many(3, many["basis"]["weekly_throughput"], seed=11)
        assert isinstance(pure, HowMany)
        assert many["items"] == {f"p{level}": n for level, n in pure.items.items()}


def test_no_throughput_is_a_200_with_a_reason(seeded: Any) -> None:
    client, _ = seeded
    later = (AS_OF + timedelta(weeks=30)).isoformat()
    body = _forecast(client, item=FEATURE, as_of=later)
    assert body["weeks"] is None and body["dates"] is None
    assert "no item was finished" in body["reason"]
    assert body["basis"]["weekly_throughput"] == [0] * 12
    assert _forecast(client, weeks=2, as_of=later)["items"] is None


@pytest.mark.parametrize(
    ("params", "status", "name"),
    [
        ({"item": "acme-pb:nope"}, 404, None),
        ({"item": "acme-jira:OPEN-1"}, 422, "item"),  # a task, not a roadmap item
        ({}, 422, "item"),
        ({"item": FEATURE, "weeks": 2}, 422, "item"),
        ({"item": FEATURE, "container": "TEAM"}, 422, "item"),
        ({"weeks": 0}, 422, "weeks"),
        ({"item": FEATURE, "trials": 0}, 422, "trials"),
        ({"item": FEATURE, "history_weeks": 0}, 422, "history_weeks"),
        ({"item": FEATURE, "seed": -1}, 422, "seed"),
    ],
)
def test_bad_requests_are_problems(seeded: Any, params: dict[str, Any], status: int, name: str | None) -> None:
    client, _ = seeded
    body = assert_problem(client.get("/v1/insights/forecast", params=params), status)
    if name is not None:
        assert [e["name"] for e in body["errors"]] == [name]


def test_a_roadmap_item_with_nothing_open_is_done_today(store: Store) -> None:
    store.items.apply([make_item("E9", kind="epic", status={"category": "in_progress", "name": "In Progress"})])
    _done_item(store, "E9-1", TEAM, AS_OF - timedelta(days=40), parent_id="acme-jira:E9")
    with api_client(store) as client:
        body = _forecast(client, item="acme-jira:E9")
    assert body["remaining"] == 0 and body["reason"] is None
    assert body["dates"] == dict.fromkeys(("p50", "p85", "p95"), AS_OF.isoformat())
