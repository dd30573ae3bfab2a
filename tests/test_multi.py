"""connectors.multi.merged_pages: merge order, cursors per stream, how streams are started."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import AuthFailed
from connectors.multi import OrderKey, RecordStream, ScopeCursors, merged_pages

pytestmark = pytest.mark.anyio
T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ListStream(RecordStream):
    """Records served one page at a time; `gate` (if set) must open before the first page."""

    def __init__(
        self, scope: str, minutes: list[int], *, gate: asyncio.Event | None = None, fail: Exception | None = None
    ) -> None:
        super().__init__(scope)
        self.rows = [{"id": f"{scope}-{m}", "minute": m} for m in minutes]
        self.gate = gate
        self.fail = fail
        self.fetches = 0
        self.opened = asyncio.Event()

    @property
    def has_more(self) -> bool:
        return bool(self.rows)

    async def fetch_page(self) -> None:
        self.fetches += 1
        self.opened.set()
        if self.fail is not None:
            raise self.fail
        if self.gate is not None:
            await self.gate.wait()
        self.pending.extend(self.rows[:2])
        del self.rows[:2]


def _key(record: dict[str, Any]) -> OrderKey:
    return (T0 + timedelta(minutes=record["minute"]), 0)


async def _merge(streams: list[ListStream]) -> list[list[str]]:
    pages = merged_pages(streams, ScopeCursors(), page_size=3, order_key=_key, native_id=lambda r: r["id"])
    return [[r["id"] for r in page.records] async for page in pages]


async def test_records_of_every_stream_come_in_update_order() -> None:
    pages = await _merge([ListStream("a", [1, 4, 5]), ListStream("b", [2, 3, 9]), ListStream("c", [])])
    assert pages == [["a-1", "b-2", "b-3"], ["a-4", "a-5", "b-9"]]


async def test_streams_after_the_first_start_together() -> None:
    # b cannot return its first page before c has started: one after the other would hang.
    gate = asyncio.Event()
    b = ListStream("b", [2], gate=gate)
    c = ListStream("c", [3])

    async def open_gate_when_c_starts() -> None:
        await c.opened.wait()
        gate.set()

    opener = asyncio.create_task(open_gate_when_c_starts())
    pages = await asyncio.wait_for(_merge([ListStream("a", [1]), b, c]), timeout=5)
    await opener
    assert pages == [["a-1", "b-2", "c-3"]]


async def test_a_failing_first_stream_costs_one_request_and_raises_as_itself() -> None:
    first = ListStream("a", [1], fail=AuthFailed("conformance: 401"))
    others = [ListStream("b", [2]), ListStream("c", [3])]
    with pytest.raises(AuthFailed, match="401"):
        await _merge([first, *others])
    assert [s.fetches for s in others] == [0, 0]


async def test_a_later_stream_failing_raises_as_itself_not_as_a_group() -> None:
    with pytest.raises(AuthFailed, match="403"):
        await _merge([ListStream("a", [1]), ListStream("b", [2], fail=AuthFailed("x: 403")), ListStream("c", [3])])
