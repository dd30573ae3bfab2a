"""The dashboard's server-side SVG charts: escaping, axes, accessible fallbacks, size bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from hub.web import charts
from tests.web_support import parse


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (0.3, 0.5), (5, 5), (7, 10), (21, 25), (180, 200), (1001, 2000)]
)
def test_axis_maximum_is_a_round_number_at_or_above_the_data(value: float, ceiling: float) -> None:
    assert charts.nice_ceiling(value) == ceiling


def test_text_from_the_tools_is_escaped_everywhere() -> None:
    hostile = '<script>alert(1)</script>"'
    html = str(charts.bar_chart("c", hostile, [(hostile, 3)], x_label=hostile, y_label="n"))
    html += str(charts.hbar_chart("h", "t", [(hostile, 2.0, hostile)], x_label="d", value_label="v"))
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_a_chart_has_a_title_a_description_axis_labels_and_a_data_table() -> None:
    page = parse(
        str(
            charts.bar_chart(
                "tp", "Throughput", [("2026-W01", 2), ("2026-W02", 5)], x_label="ISO week", y_label="Items done"
            )
        )
    )
    svg = page.find("svg")
    assert svg.attrs["role"] == "img"
    assert svg.attrs["aria-labelledby"] == "tp-t tp-d"
    assert svg.find("title").text() == "Throughput"
    assert "total 7" in svg.find("desc").text()
    assert {"ISO week", "Items done"} <= {t.text() for t in svg.find_all("text")}
    rows = page.find("table").find("tbody").find_all("tr")
    assert [(r.find("th").text(), r.find("td").text()) for r in rows] == [("2026-W01", "2"), ("2026-W02", "5")]
    # y ticks are whole numbers for whole counts (0..5 in steps of 1)
    assert [t.text() for t in svg.find_all("text") if t.attrs.get("text-anchor") == "end"][:6] == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
    ]


def test_scatter_draws_each_visible_pixel_once_and_tables_are_capped() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    points = [(at + timedelta(seconds=n % 60), 4.0, f"x:{n}") for n in range(5000)]  # within one pixel
    points.append((at + timedelta(days=20), 9.0, "x:far"))
    html = str(
        charts.scatter_chart(
            "ct",
            "Cycle",
            points,
            {"p50": 4.0},
            start=date(2026, 3, 1),
            end=date(2026, 3, 31),
            x_label="d",
            y_label="days",
        )
    )
    page = parse(html)
    assert page.find("svg").find("path", stroke_linecap="round").attrs["d"].count("M") == 2
    assert len(page.find("tbody").find_all("tr")) == charts.TABLE_ROWS_MAX
    assert f"The first {charts.TABLE_ROWS_MAX} of 5001 rows" in page.text()


def test_few_scatter_points_are_circles_with_a_tooltip_each() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    points = [(at + timedelta(days=n), float(n), f"x:{n}") for n in range(1, 4)]
    svg = parse(
        str(
            charts.scatter_chart(
                "ct", "C", points, {}, start=date(2026, 3, 1), end=date(2026, 3, 31), x_label="d", y_label="days"
            )
        )
    ).find("svg")
    circles = svg.find_all("circle", r="3.5")  # the pattern defs have circles too
    assert [c.find("title").text() for c in circles] == ["x:1: 1 days", "x:2: 2 days", "x:3: 3 days"]


def test_cumulative_flow_stacks_every_category_with_a_pattern_or_label() -> None:
    days = [(date(2026, 3, d), {"done": d, "in_progress": 2, "todo": 1}) for d in range(1, 4)]
    page = parse(str(charts.stacked_area_chart("cfd", "CFD", days, x_label="Day", y_label="Items")))
    legend = page.find("g", **{"class": "legend"})
    assert [t.text() for t in legend.find_all("text")] == ["todo", "in_progress", "done"]
    assert [th.text() for th in page.find("thead").find_all("th")] == ["Day", "done", "in_progress", "todo"]
    last = page.find("tbody").find_all("tr")[-1]
    assert [last.find("th").text()] + [td.text() for td in last.find_all("td")] == ["2026-03-03", "3", "2", "1"]


def test_progress_bar_states_the_share_in_text() -> None:
    assert "40 %" in parse(str(charts.progress_bar(0.4, "Done"))).text()
    assert "n/a" in str(charts.progress_bar(None, "Done"))
