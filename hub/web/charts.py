"""Charts as SVG drawn on the server: no script, no CDN, no build step.

Every chart is a <figure> holding an SVG with role="img", a <title> and a <desc>, axis titles,
and the same figures as a <table> inside <details>, so that a screen reader, a text browser or
a colour-blind reader gets every number. Series differ by pattern or label too, never only
by colour.
"""

# S704: the SVG is built from numbers we format and from text passed through escape() only.
# ruff: noqa: S704

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 48
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

# Status categories in stacking order, each with a colour and a fill pattern (hub/schema.py).
CATEGORY_STYLE = {
    "backlog": ("#9aa5b1", "url(#pat-dots)"),
    "todo": ("#5b8def", "url(#pat-diag)"),
    "in_progress": ("#f0a202", "url(#pat-cross)"),
    "done": ("#2e9e5b", None),
    "cancelled": ("#c4c4c4", "url(#pat-horiz)"),
}

_PATTERNS = """<defs>
<pattern id="pat-dots" width="6" height="6" patternUnits="userSpaceOnUse"><circle cx="3" cy="3" r="1.2" fill="#222" opacity=".35"/></pattern>
<pattern id="pat-diag" width="6" height="6" patternUnits="userSpaceOnUse"><path d="M0 6L6 0" stroke="#222" stroke-width="1" opacity=".3"/></pattern>
<pattern id="pat-cross" width="6" height="6" patternUnits="userSpaceOnUse"><path d="M0 3H6M3 0V6" stroke="#222" stroke-width="1" opacity=".3"/></pattern>
<pattern id="pat-horiz" width="6" height="6" patternUnits="userSpaceOnUse"><path d="M0 3H6" stroke="#222" stroke-width="1" opacity=".35"/></pattern>
</defs>"""


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^n at or above `value` (an axis maximum)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


TABLE_ROWS_MAX = 300
"""Most rows a chart's data table lists (at 100,000 items a scatterplot has thousands of
points): the table says how many it left out and where the full list is."""


@dataclass(frozen=True)
class Table:
    caption: str
    headers: Sequence[str]
    rows: Sequence[Sequence[object]]
    full_list: str = "GET /v1/insights/flow with the same filters"
    total: int | None = None
    """How many rows the data has when `rows` holds only the first TABLE_ROWS_MAX of them
    (formatting thousands of rows to show 300 was a tenth of the flow page's CPU)."""

    def html(self) -> Markup:
        shown = self.rows[:TABLE_ROWS_MAX]
        total = len(self.rows) if self.total is None else self.total
        note = (
            f'<p class="muted">The first {len(shown)} of {total} rows; all of them: {escape(self.full_list)}.</p>'
            if total > len(shown)
            else ""
        )
        head = "".join(f'<th scope="col">{escape(h)}</th>' for h in self.headers)
        body = "".join(
            "<tr>"
            + "".join(
                (f'<th scope="row">{escape(c)}</th>' if i == 0 else f"<td>{escape(c)}</td>") for i, c in enumerate(row)
            )
            + "</tr>"
            for row in shown
        )
        return Markup(
            f"<table><caption>{escape(self.caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
        )


def _figure(chart_id: str, title: str, desc: str, svg_body: str, table: Table) -> Markup:
    return Markup(
        f'<figure class="chart" id="{escape(chart_id)}">'
        f"<figcaption>{escape(title)}</figcaption>"
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{chart_id}-t {chart_id}-d" '
        f'preserveAspectRatio="xMidYMid meet">'
        f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>'
        f"{_PATTERNS}{svg_body}</svg>"
        f"<details><summary>Data table: {escape(title)}</summary>{table.html()}</details></figure>"
    )


def _ticks(y_max: float) -> int:
    """How many steps split a nice_ceiling() maximum into round values (5 -> 1s, 2 -> 0.5s, 20 -> 5s)."""
    mantissa = y_max / 10 ** math.floor(math.log10(y_max))
    ticks = 4 if round(mantissa, 3) == 2 else 5
    return int(y_max) if 1 <= y_max < ticks else ticks


def _axes(y_max: float, x_label: str, y_label: str, ticks: int | None = None) -> str:
    ticks = ticks or _ticks(y_max)
    parts = ['<g class="axis" font-size="11" fill="#333">']
    for i in range(ticks + 1):
        value = y_max * i / ticks
        y = TOP + PLOT_H - PLOT_H * i / ticks
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_num(value)}</text>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{TOP + PLOT_H}" stroke="#333"/>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H}" stroke="#333"/>')
    parts.append(f'<text x="{LEFT + PLOT_W / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(
        f'<text transform="rotate(-90)" x="{-(TOP + PLOT_H / 2)}" y="14" text-anchor="middle">{escape(y_label)}</text>'
    )
    parts.append("</g>")
    return "".join(parts)


def bar_chart(chart_id: str, title: str, bars: Sequence[tuple[str, float]], *, x_label: str, y_label: str) -> Markup:
    """Vertical bars, one per label (e.g. throughput per ISO week), each with its value above it."""
    y_max = nice_ceiling(max((v for _, v in bars), default=0))
    slot = PLOT_W / max(len(bars), 1)
    body = [_axes(y_max, x_label, y_label)]
    every = max(1, math.ceil(len(bars) / 7))  # at most ~7 x labels so they stay legible
    for i, (label, value) in enumerate(bars):
        h = PLOT_H * value / y_max
        x = LEFT + i * slot + slot * 0.15
        y = TOP + PLOT_H - h
        body.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="#5b8def">'
            f"<title>{escape(label)}: {_num(value)}</title></rect>"
        )
        body.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">{_num(value)}</text>'
        )
        if i % every == 0:
            body.append(
                f'<text x="{x + slot * 0.35:.1f}" y="{TOP + PLOT_H + 14}" font-size="10" text-anchor="middle">{escape(label.rsplit("-", 1)[-1])}</text>'
            )
    total = sum(v for _, v in bars)
    desc = f"{len(bars)} bars, total {_num(total)}; the data table below lists every value."
    return _figure(
        chart_id, title, desc, "".join(body), Table(title, (x_label, y_label), [(lbl, _num(v)) for lbl, v in bars])
    )


def scatter_chart(
    chart_id: str,
    title: str,
    points: Sequence[tuple[datetime, float, str]],
    lines: dict[str, float],
    *,
    start: date,
    end: date,
    x_label: str,
    y_label: str,
) -> Markup:
    """Points (x = a time, y = days) with labelled horizontal lines (percentiles) drawn dashed."""
    y_max = nice_ceiling(max([p[1] for p in points] + list(lines.values()) + [0]))
    span = max((end - start).days + 1, 1) * 86400.0
    origin = datetime(start.year, start.month, start.day, tzinfo=points[0][0].tzinfo if points else None)
    body = [_axes(y_max, x_label, y_label)]
    body.append(f'<text x="{LEFT}" y="{TOP + PLOT_H + 14}" font-size="10">{start.isoformat()}</text>')
    body.append(
        f'<text x="{LEFT + PLOT_W}" y="{TOP + PLOT_H + 14}" font-size="10" text-anchor="end">{end.isoformat()}</text>'
    )
    drawn: set[tuple[int, int]] = set()
    many = len(points) > TABLE_ROWS_MAX
    dots: list[str] = []
    # Per point only multiplications (thousands of points at 100,000 items); a naive time
    # (no zone) has no place on the axis and is drawn at its start, as before.
    x0 = origin.timestamp() if origin.tzinfo else None
    x_scale, y_scale = PLOT_W / span, PLOT_H / y_max
    x_right, y_base = LEFT + PLOT_W, TOP + PLOT_H
    for at, days, label in points:
        x = min(max(LEFT + (at.timestamp() - x0) * x_scale, LEFT), x_right) if x0 is not None else LEFT
        y = y_base - days * y_scale
        # Points landing on a pixel already drawn add nothing visible: at 100,000 items this
        # keeps the SVG to the points one can see (the data table and the API have them all).
        if (pixel := (round(x), round(y))) in drawn:
            continue
        drawn.add(pixel)
        if many:  # thousands of points: one path of round dots, no tooltip each (a tenth of the bytes)
            dots.append(f"M{pixel[0]} {pixel[1]}h0")
        else:
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#5b8def" fill-opacity=".7" stroke="#1d4ed8">'
                f"<title>{escape(label)}: {_num(days)} days</title></circle>"
            )
    if dots:
        body.append(
            f'<path d="{"".join(dots)}" stroke="#1d4ed8" stroke-opacity=".6" stroke-width="6" stroke-linecap="round"/>'
        )
    dashes = {"p50": "2 2", "p85": "6 3", "p95": "10 3 2 3"}
    for name, value in lines.items():
        y = TOP + PLOT_H - PLOT_H * value / y_max
        body.append(
            f'<line x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#b42318" '
            f'stroke-dasharray="{dashes.get(name, "4 4")}"/>'
            f'<text x="{LEFT + PLOT_W - 2}" y="{y - 3:.1f}" font-size="11" text-anchor="end" fill="#b42318">'
            f"{escape(name)} {_num(value)} d</text>"
        )
    desc = f"{len(points)} items; " + ", ".join(f"{k} = {_num(v)} days" for k, v in lines.items())
    rows = [(label, at.date().isoformat(), _num(days)) for at, days, label in points[:TABLE_ROWS_MAX]]
    table = Table(title, ("Item", "Done on", y_label), rows, total=len(points))
    return _figure(chart_id, title, desc, "".join(body), table)


def hbar_chart(
    chart_id: str, title: str, bars: Sequence[tuple[str, float, str]], *, x_label: str, value_label: str
) -> Markup:
    """Horizontal bars (e.g. aging work in progress): label, value and a note written at the bar's end."""
    rows = list(bars)[:20]
    height = TOP + BOTTOM + 18 * max(len(rows), 1)
    x_max = nice_ceiling(max((v for _, v, _ in rows), default=0))
    label_w = 150
    plot_w = WIDTH - label_w - RIGHT - 90
    body = []
    for i, (label, value, note) in enumerate(rows):
        y = TOP + i * 18
        w = plot_w * value / x_max
        body.append(
            f'<text x="{label_w - 6}" y="{y + 12}" font-size="11" text-anchor="end">{escape(label[:24])}</text>'
        )
        body.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="13" fill="#f0a202" stroke="#8a5a00">'
            f"<title>{escape(label)}: {_num(value)} {escape(value_label)} ({escape(note)})</title></rect>"
        )
        body.append(
            f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" font-size="10">{_num(value)} · {escape(note)}</text>'
        )
    axis_y = TOP + 18 * max(len(rows), 1) + 4
    body.append(f'<line x1="{label_w}" x2="{label_w + plot_w}" y1="{axis_y}" y2="{axis_y}" stroke="#333"/>')
    body.append(f'<text x="{label_w}" y="{axis_y + 14}" font-size="10">0</text>')
    body.append(f'<text x="{label_w + plot_w}" y="{axis_y + 14}" font-size="10" text-anchor="end">{_num(x_max)}</text>')
    body.append(
        f'<text x="{label_w + plot_w / 2}" y="{axis_y + 30}" font-size="11" text-anchor="middle">{escape(x_label)}</text>'
    )
    desc = f"{len(rows)} items, oldest first"
    listed = [(lbl, _num(v), note) for lbl, v, note in bars[:TABLE_ROWS_MAX]]
    table = Table(title, ("Item", value_label, "Zone"), listed, total=len(bars))
    figure = _figure(chart_id, title, desc, "".join(body), table)
    return Markup(str(figure).replace(f'viewBox="0 0 {WIDTH} {HEIGHT}"', f'viewBox="0 0 {WIDTH} {height}"', 1))


def stacked_area_chart(
    chart_id: str, title: str, days: Sequence[tuple[date, dict[str, int]]], *, x_label: str, y_label: str
) -> Markup:
    """Cumulative flow: one stacked band per status category (done at the bottom), with a legend."""
    order = [c for c in ("done", "cancelled", "in_progress", "todo", "backlog") if any(c in d for _, d in days)]
    y_max = nice_ceiling(max((sum(d.values()) for _, d in days), default=0))
    n = max(len(days) - 1, 1)
    body = [_axes(y_max, x_label, y_label)]
    below = [0.0] * len(days)
    for category in order:
        above = [below[i] + days[i][1].get(category, 0) for i in range(len(days))]
        pts_top = [(LEFT + PLOT_W * i / n, TOP + PLOT_H - PLOT_H * v / y_max) for i, v in enumerate(above)]
        pts_bottom = [(LEFT + PLOT_W * i / n, TOP + PLOT_H - PLOT_H * v / y_max) for i, v in enumerate(below)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts_top + pts_bottom[::-1])
        colour, pattern = CATEGORY_STYLE[category]
        body.append(
            f'<polygon points="{path}" fill="{colour}" stroke="#fff" stroke-width=".5"><title>{category}</title></polygon>'
        )
        if pattern:
            body.append(f'<polygon points="{path}" fill="{pattern}"/>')
        below = above
    if days:
        body.append(f'<text x="{LEFT}" y="{TOP + PLOT_H + 14}" font-size="10">{days[0][0].isoformat()}</text>')
        body.append(
            f'<text x="{LEFT + PLOT_W}" y="{TOP + PLOT_H + 14}" font-size="10" text-anchor="end">{days[-1][0].isoformat()}</text>'
        )
    legend = []
    for i, category in enumerate(reversed(order)):
        colour, pattern = CATEGORY_STYLE[category]
        x = LEFT + 8 + i * 110
        legend.append(f'<rect x="{x}" y="{TOP + 2}" width="12" height="12" fill="{colour}" stroke="#333"/>')
        if pattern:
            legend.append(f'<rect x="{x}" y="{TOP + 2}" width="12" height="12" fill="{pattern}"/>')
        legend.append(f'<text x="{x + 16}" y="{TOP + 12}" font-size="11">{category}</text>')
    body.append(
        f'<g class="legend"><rect x="{LEFT + 2}" y="{TOP}" width="{len(order) * 110 + 8}" height="16" fill="#fff" opacity=".85"/>{"".join(legend)}</g>'
    )
    last = days[-1][1] if days else {}
    desc = f"{len(days)} days; on the last day " + ", ".join(f"{c} {last.get(c, 0)}" for c in order)
    rows = [(d.isoformat(), *(counts.get(c, 0) for c in order)) for d, counts in days]
    return _figure(chart_id, title, desc, "".join(body), Table(title, ("Day", *order), rows))


def progress_bar(share: float | None, label: str) -> Markup:
    """A small labelled bar for a 0..1 share; the percentage is written beside it, not only drawn."""
    if share is None:
        return Markup(f'<span class="progress none">{escape(label)}: n/a</span>')
    pct = max(0.0, min(share, 1.0)) * 100
    return Markup(
        f'<span class="progress"><svg viewBox="0 0 100 10" width="100" height="10" role="img" '
        f'aria-label="{escape(label)}: {pct:.0f} %"><title>{escape(label)}: {pct:.0f} %</title>'
        f'<rect width="100" height="10" fill="#e5e7eb"/><rect width="{pct:.1f}" height="10" fill="#2e9e5b"/></svg>'
        f" <span>{pct:.0f} %</span></span>"
    )
