"""The bulk path's own time binding (hub/store/bulk.py `time_binder`) writes exactly
what SQLAlchemy's column type writes: SQLite compares stored times as text, so one differing
character would misorder rows written by the two paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite

from hub.db.tables import UTCDateTime
from hub.store.bulk import time_binder

_ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), ZoneInfo("Europe/Berlin")]
)
_TIMES = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30)),
    _ZONES,
)


@given(value=st.one_of(st.none(), _TIMES))
def test_bound_times_equal_sqlalchemys(value: datetime | None) -> None:
    for dialect in (sqlite.dialect(), postgresql.psycopg.dialect()):
        processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        assert processor is not None
        expected, got = processor(value), time_binder(dialect)(value)
        assert got == expected and type(got) is type(expected)
        if isinstance(got, datetime):
            assert got.tzinfo is UTC
