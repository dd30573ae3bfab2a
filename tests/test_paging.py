"""Paginators (with the repeated-token guard) and the shared datetime cursor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.cursors import DatetimeCursor, InvalidCursor, parse_time
from connectors.paging import (
    LinkHeaderPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    PageTokenPaginator,
    RelayCursorPaginator,
    RepeatedPageToken,
    UpdatedSinceWindow,
    ahead_in_order,
)


def response(headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(200, headers=headers or {}, request=httpx.Request("GET", "https://tool.example/list"))


def walk(paginator: Any, pages: list[tuple[dict[str, str], Any]]) -> list[Any]:
    tokens = []
    for headers, data in pages:
        assert paginator.has_more
        tokens.append(paginator.advance(response(headers), data))
    return tokens


# ---------------------------------------------------------------- page token (Jira)


def test_page_token_until_absent() -> None:
    p = PageTokenPaginator()
    assert p.current_value is None
    tokens = walk(p, [({}, {"nextPageToken": "a", "issues": []}), ({}, {"nextPageToken": "b"}), ({}, {"issues": []})])
    assert tokens == ["a", "b", None]
    assert not p.has_more
    assert p.count == 3


def test_page_token_is_last_wins_and_empty_token_ends() -> None:
    p = PageTokenPaginator()
    assert p.advance(response(), {"nextPageToken": "x", "isLast": True}) is None
    assert not p.has_more
    q = PageTokenPaginator()
    assert q.advance(response(), {"nextPageToken": ""}) is None


def test_page_token_repeated_is_refused() -> None:
    p = PageTokenPaginator()
    p.advance(response(), {"nextPageToken": "a"})
    p.advance(response(), {"nextPageToken": "b"})
    with pytest.raises(RepeatedPageToken, match="'a' repeated after 3 pages"):
        p.advance(response(), {"nextPageToken": "a"})


def test_finished_paginator_cannot_advance() -> None:
    p = PageTokenPaginator()
    p.advance(response(), {})
    with pytest.raises(RuntimeError):
        p.advance(response(), {})


# ---------------------------------------------------------------- offset (Redmine) and page number (GitLab)


def test_offset_with_total_count() -> None:
    p = OffsetPaginator(2, records=lambda d: d["issues"])
    tokens = walk(
        p,
        [
            ({}, {"issues": [1, 2], "total_count": 5, "offset": 0}),
            ({}, {"issues": [3, 4], "total_count": 5, "offset": 2}),
            ({}, {"issues": [5], "total_count": 5, "offset": 4}),
        ],
    )
    assert tokens == [2, 4, None]


def test_offset_without_total_stops_on_short_or_empty_page() -> None:
    p = OffsetPaginator(2, records=lambda d: d, total_path=None)
    assert walk(p, [({}, [1, 2]), ({}, [3])]) == [2, None]
    q = OffsetPaginator(2, records=lambda d: d, total_path=None)
    assert walk(q, [({}, [1, 2]), ({}, [])]) == [2, None]


def test_offset_guard() -> None:
    p = OffsetPaginator(2, records=lambda d: d["issues"])
    assert p.advance(response(), {"issues": [1, 2], "total_count": 10}) == 2
    p.current_value = 0  # a caller that rewinds would re-request a page already read
    with pytest.raises(RepeatedPageToken):
        p.advance(response(), {"issues": [1, 2], "total_count": 10})


def test_page_number_header_and_fallback() -> None:
    p = PageNumberPaginator(2, records=lambda d: d)
    assert walk(p, [({"x-next-page": "2"}, [1, 2]), ({"x-next-page": ""}, [3])]) == [2, None]
    q = PageNumberPaginator(2, records=lambda d: d)
    assert walk(q, [({}, [1, 2]), ({}, [3, 4]), ({}, [5])]) == [2, 3, None]
    r = PageNumberPaginator(2, records=lambda d: d)
    r.advance(response({"x-next-page": "2"}), [1, 2])
    with pytest.raises(RepeatedPageToken):
        r.advance(response({"x-next-page": "2"}), [1, 2])


# ---------------------------------------------------------------- Link header (GitHub, GitLab)


def test_link_header_next() -> None:
    p = LinkHeaderPaginator()
    page1 = {
        "link": '<https://api.github.com/repositories/1/issues?page=2>; rel="next", '
        '<https://api.github.com/repositories/1/issues?page=5>; rel="last"'
    }
    page2 = {"link": '<https://api.github.com/repositories/1/issues?page=1>; rel="prev"'}
    assert walk(p, [(page1, []), (page2, [])]) == ["https://api.github.com/repositories/1/issues?page=2", None]


def test_link_header_repeat() -> None:
    p = LinkHeaderPaginator()
    same = {"link": '<https://x.example/?page=2>; rel="next"'}
    p.advance(response(same), [])
    with pytest.raises(RepeatedPageToken):
        p.advance(response(same), [])


# ---------------------------------------------------------------- relay cursor (Linear)


def test_relay_cursor() -> None:
    path = ("data", "issues", "pageInfo")
    p = RelayCursorPaginator(path)

    def page(has_next: bool, cursor: str | None) -> dict[str, Any]:
        return {"data": {"issues": {"nodes": [], "pageInfo": {"hasNextPage": has_next, "endCursor": cursor}}}}

    assert walk(p, [({}, page(True, "c1")), ({}, page(True, "c2")), ({}, page(False, "c3"))]) == ["c1", "c2", None]
    q = RelayCursorPaginator(path)
    q.advance(response(), page(True, "c1"))
    with pytest.raises(RepeatedPageToken):
        q.advance(response(), page(True, "c1"))


# ---------------------------------------------------------------- cursors


T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_cursor_keeps_newest_with_id_tie_break_and_round_trips() -> None:
    c = DatetimeCursor()
    assert c.serialize() is None
    assert c.since(timedelta(minutes=5)) is None
    c.observe(T0, "9")
    c.observe(T0, "10")  # numeric ids compare as numbers
    c.observe(T0 - timedelta(seconds=1), "99")
    assert (c.updated, c.last_id) == (T0, "10")
    text = c.serialize()
    assert text is not None
    back = DatetimeCursor.parse(text)
    assert back == c
    assert back.since(timedelta(minutes=5)) == T0 - timedelta(minutes=5)


def test_cursor_converts_to_utc() -> None:
    c = DatetimeCursor()
    c.observe(parse_time("2026-01-01T13:00:00.000+0100"), "1")
    assert c.updated == T0
    assert DatetimeCursor.parse(None) == DatetimeCursor()


@pytest.mark.parametrize("bad", ["", "not json", '{"v": 2, "updated": "x"}', '{"v": 1}', "[]"])
def test_unreadable_cursor(bad: str) -> None:
    with pytest.raises(InvalidCursor, match="full sync"):
        DatetimeCursor.parse(bad)


# ---------------------------------------------------------------- UpdatedSinceWindow

W0 = datetime(2025, 1, 1, tzinfo=UTC)


def row(ident: int, seconds: float) -> dict[str, Any]:
    return {"id": ident, "updated": W0 + timedelta(seconds=seconds)}


def _key(r: dict[str, Any]) -> tuple[str, str]:
    return str(r["id"]), r["updated"].isoformat()


def _updated(r: dict[str, Any]) -> datetime:
    return r["updated"]  # type: ignore[no-any-return]


class TimeSortedList:
    """A tool's list sorted by update time: `updated >= anchor` (optionally fuzzy: from the
    second before), paged by offset. Records can be edited between requests."""

    def __init__(self, rows: list[dict[str, Any]], *, fuzzy: bool = False) -> None:
        self.rows = rows
        self.fuzzy = fuzzy
        self.requests = 0

    def answer(self, anchor: datetime | None, offset: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
        self.requests += 1
        low = None if anchor is None else anchor - timedelta(seconds=1 if self.fuzzy else 0)
        chosen = sorted(
            (r for r in self.rows if low is None or r["updated"] > low or (not self.fuzzy and r["updated"] >= low)),
            key=lambda r: (r["updated"], r["id"]),
        )
        return chosen[offset : offset + limit], offset + limit < len(chosen)


def drain(window: UpdatedSinceWindow, tool: TimeSortedList, between: Any = None) -> list[int]:
    read: list[int] = []
    while window.has_more:
        rows, more = tool.answer(window.anchor, window.offset, window.page_size)
        read.extend(r["id"] for r in window.take(rows, key=_key, updated=_updated, more=more))
        if between:
            between()
        assert tool.requests < 100
    return read


def test_window_reads_every_row_once_when_rows_already_read_are_edited() -> None:
    tool = TimeSortedList([row(n, n) for n in range(1, 21)])
    edits = iter(range(1, 21))

    def edit_one_read_row() -> None:
        victim = next(edits)
        tool.rows[victim - 1]["updated"] = W0 + timedelta(seconds=100 + victim)

    read = drain(UpdatedSinceWindow(None, page_size=4), tool, edit_one_read_row)
    assert set(read) == set(range(1, 21))


def test_plain_offsets_would_have_skipped_a_row() -> None:
    """The failure the window exists for, shown on the same list with offsets alone."""
    tool = TimeSortedList([row(n, n) for n in range(1, 21)])
    read: list[int] = []
    offset = 0
    while True:
        rows, more = tool.answer(None, offset, 4)
        read.extend(r["id"] for r in rows)
        tool.rows[len(read) // 4 - 1]["updated"] = W0 + timedelta(seconds=100 + len(read))
        offset += 4
        if not more:
            break
    assert set(range(1, 21)) - set(read)


def test_a_second_holding_more_than_a_page_steps_the_offset_in_whole_pages() -> None:
    tool = TimeSortedList([row(n, 5) for n in range(1, 10)] + [row(20, 6), row(21, 7)])
    window = UpdatedSinceWindow(None, page_size=3)
    read = drain(window, tool)
    assert sorted(read) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21]
    assert len(read) == len(set(read))


def test_a_fuzzy_greater_or_equal_brings_back_the_second_before_without_duplicates() -> None:
    tool = TimeSortedList([row(n, n // 2) for n in range(1, 30)], fuzzy=True)
    read = drain(UpdatedSinceWindow(None, page_size=5), tool)
    assert sorted(read) == list(range(1, 30))


def test_since_is_floored_to_the_resolution_and_pages_are_numbered() -> None:
    window = UpdatedSinceWindow(W0 + timedelta(seconds=3, milliseconds=999), page_size=50)
    assert window.anchor == W0 + timedelta(seconds=3)
    ms = UpdatedSinceWindow(W0 + timedelta(microseconds=1_500), page_size=50, resolution=timedelta(milliseconds=1))
    assert ms.anchor == W0 + timedelta(milliseconds=1)
    assert window.page_number == 1
    window.take([row(n, 3) for n in range(50)], key=_key, updated=_updated, more=True)
    assert (window.offset, window.page_number) == (50, 2)


def test_a_server_that_ignores_the_window_trips_the_repeated_page_guard() -> None:
    page = [row(n, 1) for n in range(1, 4)]
    window = UpdatedSinceWindow(None, page_size=3, what="acme: /issues")
    window.take(page, key=_key, updated=_updated, more=True)
    window.take(page, key=_key, updated=_updated, more=True)  # the anchor's first page: all read before
    with pytest.raises(RepeatedPageToken, match="acme: /issues: offset 3"):
        window.take(page, key=_key, updated=_updated, more=True)


# ---------------------------------------------------------------- ahead_in_order


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the connectors run on asyncio


@pytest.mark.anyio
async def test_ahead_in_order_runs_a_window_at_once_and_yields_in_order() -> None:
    running, most, started = 0, 0, []

    async def call(n: int) -> int:
        nonlocal running, most
        started.append(n)
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001 * (5 - n % 5))  # later calls finish first
        running -= 1
        return n

    got = [n async for n in ahead_in_order((call(n) for n in range(10)), 3)]
    assert got == list(range(10))
    assert most == 3


@pytest.mark.anyio
async def test_ahead_in_order_cancels_the_rest_on_a_failure() -> None:
    cancelled: list[int] = []

    async def call(n: int) -> int:
        try:
            if n == 1:
                await asyncio.sleep(0.01)
                raise ValueError("page 1 failed")
            await asyncio.sleep(0 if n == 0 else 10)
            return n
        except asyncio.CancelledError:
            cancelled.append(n)
            raise

    got: list[int] = []

    async def consume() -> None:
        async for n in ahead_in_order((call(n) for n in range(5)), 3):
            got.append(n)

    with pytest.raises(ValueError, match="page 1"):
        await consume()
    assert got == [0]
    assert sorted(cancelled) == [2, 3]  # call 4 was never started
