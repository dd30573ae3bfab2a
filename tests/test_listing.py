"""`IdListing`: a listing of ids that behaves as an ordered set of strings, held as integers."""

from __future__ import annotations

import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from connectors.listing import IdListing

DECIMAL = st.integers(min_value=0, max_value=2**63 - 1).map(str)
# Shapes that must not become integers: a leading zero, a sign, too large for 64 bits,
# non-ASCII digits, a UUID. Each must be kept as given.
ODD = st.sampled_from(["007", "0x1A", "+5", "-5", str(2**63), "١٢٣", "²", "", " 1", "1 ", "1.0"]) | st.uuids().map(str)


def _as_ordered_set(ids: list[str]) -> dict[str, None]:
    return dict.fromkeys(ids)


@given(st.lists(DECIMAL | ODD, max_size=60), st.lists(DECIMAL | ODD, max_size=20))
def test_a_listing_behaves_as_the_ordered_set_of_its_ids(ids: list[str], probes: list[str]) -> None:
    listing = IdListing(ids)
    expected = _as_ordered_set(ids)
    assert list(listing) == list(expected)
    assert len(listing) == len(expected)
    for probe in [*ids, *probes]:
        assert (probe in listing) == (probe in expected), probe


@given(st.lists(st.integers(min_value=0, max_value=50).map(str), max_size=80))
def test_repeated_decimal_ids_keep_their_first_place(ids: list[str]) -> None:
    listing = IdListing(ids)
    assert listing.compact
    assert list(listing) == list(dict.fromkeys(ids))


def test_adding_after_a_lookup_is_seen_by_the_next_lookup() -> None:
    listing = IdListing(["10", "3"])
    assert "3" in listing and "7" not in listing
    listing.add("7")
    listing.add("3")
    assert "7" in listing
    assert list(listing) == ["10", "3", "7"]
    assert len(listing) == 3


def test_an_id_of_another_shape_turns_the_listing_into_strings_in_order() -> None:
    listing = IdListing(["20", "5", "20"])
    listing.add("PROJ-1")
    assert not listing.compact
    assert list(listing) == ["20", "5", "PROJ-1"]
    assert "5" in listing and "PROJ-1" in listing and "05" not in listing


def test_integers_that_print_differently_are_not_confused() -> None:
    listing = IdListing(["7", "10"])
    assert "07" not in listing
    assert "+7" not in listing
    assert 7 not in listing  # the sweep asks with strings; anything else is not listed


def test_a_hundred_thousand_decimal_ids_take_a_fraction_of_a_set_of_strings() -> None:
    ids = [str(10_000 + 3 * n) for n in range(100_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        listing = IdListing(iter(ids))
        assert "10003" in listing  # builds the sorted index too
        compact = tracemalloc.get_traced_memory()[0] - before
        before = tracemalloc.get_traced_memory()[0]
        as_set = set(str(10_000 + 3 * n) for n in range(100_000))
        strings = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(as_set) == len(listing)
    # 16 bytes an id (two arrays) against ~100 for a set of fresh strings.
    assert compact < 2.5e6 < strings
