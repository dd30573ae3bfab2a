"""A tool's listing of ids, held compactly: what a full run and the deletion sweep keep in memory.

A full run keeps every id the tool lists until its deletion sweep (the sweep's first listing,
`Connector.full_listing`), and the sweep tests each stored id against it. As a set or dict of
`str`, one id costs about 100 bytes (the string object and its hash-table slot): 10 MB for
100,000 issues, 100 MB for a million, which is most of what a full sync's peak RSS grew by from
20,000 to 100,000 issues. Most tools' ids are decimal integers (Jira's issue ids, GitHub's,
GitLab's and Redmine's), so while every id is one, the listing holds them as 8-byte integers
in arrays (listing order, and a sorted copy for membership by binary search): 16 bytes an id.
The first id of another shape (a Linear or Productboard UUID, a leading zero) turns the
listing into an ordered dict of strings, as before.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Collection, Iterable, Iterator

_INT64_MAX = 2**63 - 1


def _as_int(native_id: str) -> int | None:
    """The id as an int when `str(int)` gives it back exactly (no sign, no leading zero, fits 64 bits)."""
    if not native_id.isascii() or not native_id.isdigit():
        return None
    if len(native_id) > 1 and native_id[0] == "0":
        return None
    value = int(native_id)
    return value if value <= _INT64_MAX else None


class IdListing(Collection[str]):
    """Ids in the order first listed, each once; `in`, `len` and iteration as for a set of `str`."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._order: array[int] = array("q")
        self._sorted: array[int] | None = None  # built on the first lookup after an `add`
        self._strings: dict[str, None] | None = None  # once an id is not a decimal integer
        for native_id in ids:
            self.add(native_id)

    def add(self, native_id: str) -> None:
        """List an id (again: a paged listing over live data may list one twice)."""
        if self._strings is None:
            value = _as_int(native_id)
            if value is not None:
                self._order.append(value)
                self._sorted = None
                return
            self._strings = dict.fromkeys(map(str, self._unique_order()))
            self._order, self._sorted = array("q"), None
        self._strings[native_id] = None

    @property
    def compact(self) -> bool:
        """True while every id is held as an integer."""
        return self._strings is None

    def _index(self) -> array[int]:
        """The distinct ids, sorted (built once per batch of `add`s)."""
        if self._sorted is None:
            ordered = sorted(self._order)
            distinct = array("q", (v for i, v in enumerate(ordered) if i == 0 or v != ordered[i - 1]))
            if len(distinct) != len(self._order):  # repeats: keep each id's first place only
                self._order = array("q", self._first_places(self._order))
            self._sorted = distinct
        return self._sorted

    @staticmethod
    def _first_places(order: array[int]) -> Iterator[int]:
        seen: set[int] = set()
        for value in order:
            if value not in seen:
                seen.add(value)
                yield value

    def _unique_order(self) -> array[int]:
        self._index()
        return self._order

    def __contains__(self, native_id: object) -> bool:
        if self._strings is not None:
            return native_id in self._strings
        if not isinstance(native_id, str):
            return False
        value = _as_int(native_id)
        if value is None:
            return False
        index = self._index()
        at = bisect_left(index, value)
        return at < len(index) and index[at] == value

    def __len__(self) -> int:
        return len(self._strings) if self._strings is not None else len(self._index())

    def __iter__(self) -> Iterator[str]:
        if self._strings is not None:
            return iter(self._strings)
        return map(str, self._unique_order())

    def __repr__(self) -> str:
        return f"IdListing({len(self)} ids{'' if self.compact else ', as strings'})"


__all__ = ["IdListing"]
