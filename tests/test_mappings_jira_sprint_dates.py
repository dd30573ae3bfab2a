"""jira_sprint's dates: ISO text is parsed inline, anything else through parse_datetime.

mappings/transforms/jira.py parses a sprint's `startDate`/`endDate` text with
`datetime.fromisoformat` directly (bench/README.md "Normalisation, round 4"); these are the
dates `parse_datetime(value).date()` gave before, for each shape (checked against main).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from mappings.context import MappingContext
from mappings.transforms.jira import jira_sprint

_CTX = MappingContext.coerce({"source": "s", "tool": "jira"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-15T00:00:00.000Z", date(2025, 1, 15)),
        # The date in the time's own zone, not in UTC (23:30 at -05:00 is the 16th in UTC).
        ("2025-01-15T23:30:00-0500", date(2025, 1, 15)),
        ("2025-01-15T10:00:00", date(2025, 1, 15)),  # naive: taken as UTC, same date
        ("2025-01-15", date(2025, 1, 15)),
        ("", None),  # empty text: no date, no error
        (None, None),
        (1700000000000, date(2023, 11, 14)),  # epoch milliseconds
    ],
)
def test_sprint_dates(value: Any, expected: date | None) -> None:
    sprint = {"id": 1, "state": "active", "name": "S", "startDate": value, "endDate": value}
    out = jira_sprint([sprint], _CTX)
    assert out is not None
    assert (out["starts_on"], out["ends_on"]) == (expected, expected)


def test_bad_sprint_date_text_still_raises() -> None:
    with pytest.raises(ValueError, match="isoformat"):
        jira_sprint([{"id": 1, "startDate": "not a time"}], _CTX)
