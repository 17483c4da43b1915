"""Server-rendered SVG: metrics over versions, and a version's lineage as a graph.

Both return :class:`markupsafe.Markup`, so a Jinja template embeds them as they are (``{{ chart }}``), inline
in the page. Every text from the store (dataset names, refs, metric names, messages, store URLs) is escaped
with :func:`markupsafe.escape` where it is written, and so is every URL ``href`` gives. Hover needs no
script: each point and node carries an SVG ``<title>``, which browsers show as a tooltip. Nothing is styled
with ``style`` attributes or a ``<style>`` element (the page's Content-Security-Policy forbids inline
styles): colours and lines are SVG presentation attributes, and every part has a ``gf-`` class the page's
CSS can restyle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from gitfree.versioning import Lineage, LineageNode, MetricsPoint

__all__ = ["PALETTE", "lineage_graph", "metrics_chart"]

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
"""Line colours, in order (Tableau 10 without its grey); the eleventh metric starts again, dashed."""
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'

WIDTH = 760
PANEL_HEIGHT = 150
PLOT = {"left": 64, "right": 30, "top": 28, "bottom": 30}
MARKER_GAP = 6.0
"""Pixels between the markers of one line: a dense line keeps every point, and fewer markers."""


def _e(value: object) -> str:
    return str(escape(str(value)))


def _svg(width: float, height: float, label: str, body: Iterable[str], cls: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{cls}" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{_e(label)}" {FONT} font-size="12">'
        f"<title>{_e(label)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every store text in body went through _e


# ---------------------------------------------------------------------------- numbers and ticks


def _nice_step(span: float, count: int) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about ``count`` ticks over ``span`` (labels stay short:
    a step of 0.2 needs one decimal, where 0.25 would need two)."""
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)


def _ticks(low: float, high: float, count: int = 4, *, whole: bool = False) -> list[float]:
    step = _nice_step(high - low, count)
    if whole:
        step = max(1.0, math.ceil(step))
    first = math.ceil(low / step - 1e-9) * step
    ticks, i = [], 0
    while first + i * step <= high + step * 1e-9 and i < 100:
        ticks.append(first + i * step)
        i += 1
    return ticks


def _tick_label(value: float, step: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-4:
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{value:,.{decimals}f}" if decimals or abs(value) >= 1e4 else f"{value:.0f}"


def _domain(values: Sequence[float]) -> tuple[float, float]:
    """The y range shown for ``values``: their range padded a little; one value (or all equal) centred."""
    low, high = min(values), max(values)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.06
    return low - pad, high + pad


def _natural(name: str) -> list[str | int]:
    """Sorts ``metric_2`` before ``metric_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _value(value: float) -> str:
    """A metric's value as recorded (``0.91``, ``120000``), for a tooltip."""
    return repr(value) if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class _Panel:
    """Where one metric is drawn: its box and its scales."""

    x: float
    y: float
    width: float
    height: float
    versions: tuple[float, float]
    values: tuple[float, float]

    def px(self, number: float) -> float:
        low, high = self.versions
        left, span = self.x + PLOT["left"], self.width - PLOT["left"] - PLOT["right"]
        return left + span / 2 if high == low else left + (number - low) / (high - low) * span

    def py(self, value: float) -> float:
        low, high = self.values
        top, span = self.y + PLOT["top"], self.height - PLOT["top"] - PLOT["bottom"]
        return top + span - (value - low) / (high - low) * span


def metrics_chart(
    points: Sequence[MetricsPoint], names: Sequence[str] | None = None, href: Callable[[int], str] | None = None
) -> Markup:
    """Metrics over versions as an SVG: one panel per metric (its own y axis, with ticks in its own units),
    sharing the x axis of version numbers, so metrics of any scale read side by side; each panel's title,
    in its line's colour, is the legend.

    Each metric is a polyline over the versions that record it, with a marker per version (thinned to one
    every few pixels when there are many versions: the line keeps every point). A marker's ``<title>`` says
    ``name @N: value`` (a tooltip, no script) and, with ``href``, it links to ``href(N)``, the version's page.

    Args:
        points: what :meth:`gitfree.Store.metrics` returns (any order).
        names: the metrics to draw, in order; default every metric of ``points``, sorted.
        href: the URL of a version's page, from its number.
    """
    found = {n for p in points for n in p.metrics}
    chosen = list(dict.fromkeys(names)) if names is not None else sorted(found, key=_natural)
    ordered = sorted(points, key=lambda p: p.number)
    if not chosen or not ordered:
        return _svg(
            WIDTH, 60, "no metrics", ['<text x="12" y="34" class="gf-empty">no metrics to chart</text>'], "gf-metrics"
        )
    columns = 1 if len(chosen) <= 3 else 2
    width = WIDTH / columns
    numbers = (ordered[0].number, ordered[-1].number)
    body: list[str] = []
    for i, name in enumerate(chosen):
        series = [(p.number, p.metrics[name]) for p in ordered if name in p.metrics]
        values = _domain([float(v) for _, v in series]) if series else (0.0, 1.0)
        panel = _Panel((i % columns) * width, (i // columns) * PANEL_HEIGHT, width, PANEL_HEIGHT, numbers, values)
        body += _panel(panel, name, i, series, href)
    rows = math.ceil(len(chosen) / columns)
    label = f"metrics over versions {numbers[0]} to {numbers[1]}: {', '.join(chosen)}"
    return _svg(WIDTH, rows * PANEL_HEIGHT, label, body, "gf-metrics")


def _panel(
    panel: _Panel, name: str, index: int, series: list[tuple[int, float]], href: Callable[[int], str] | None
) -> list[str]:
    colour = PALETTE[index % len(PALETTE)]
    dash = ' stroke-dasharray="6 3"' if index >= len(PALETTE) else ""
    out = [f'<g class="gf-panel" data-metric="{_e(name)}">']
    out += _axes(panel)
    title_y = panel.y + 16
    room = max(8, int((panel.width - PLOT["left"] - PLOT["right"] - 24 - 90) / CHAR))  # leave the latest value room
    out.append(
        f'<line x1="{panel.x + PLOT["left"]:.1f}" y1="{title_y - 4:.1f}" x2="{panel.x + PLOT["left"] + 18:.1f}" '
        f'y2="{title_y - 4:.1f}" stroke="{colour}" stroke-width="3"{dash} class="gf-legend-swatch"/>'
        f'<text x="{panel.x + PLOT["left"] + 24:.1f}" y="{title_y:.1f}" font-weight="600" fill="#222" '
        f'class="gf-legend"><title>{_e(name)}</title>{_e(_short(name, room))}</text>'
    )
    if series:
        number, value = series[-1]
        out.append(
            f'<text x="{panel.x + panel.width - PLOT["right"]:.1f}" y="{title_y:.1f}" text-anchor="end" fill="#555" '
            f'class="gf-latest">@{number}: {_e(f"{value:.6g}")}</text>'
        )
    if not series:
        out.append(
            f'<text x="{panel.px(sum(panel.versions) / 2):.1f}" y="{panel.y + PANEL_HEIGHT / 2:.1f}" '
            'text-anchor="middle" fill="#777" class="gf-empty">no version records it</text></g>'
        )
        return out
    coords = [(panel.px(n), panel.py(float(v))) for n, v in series]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    out.append(
        f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"{dash} '
        f'stroke-linejoin="round" class="gf-metric-line" data-metric="{_e(name)}"/>'
    )
    for i in _marked(coords, series):
        (number, value), (x, y) = series[i], coords[i]
        marker = (
            f'<g class="gf-point"><title>{_e(name)} @{number}: {_e(_value(value))}</title>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="#fff" fill-opacity="0"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}" stroke="#fff" stroke-width="1"/></g>'
        )
        out.append(f'<a href="{_e(href(number))}">{marker}</a>' if href is not None else marker)
    out.append("</g>")
    return out


def _marked(coords: list[tuple[float, float]], series: list[tuple[int, float]]) -> list[int]:
    """The points that get a marker: one every ``MARKER_GAP`` pixels, and always the newest, the lowest and
    the highest value."""
    keep: set[int] = {len(coords) - 1}
    values = [v for _, v in series]
    keep |= {values.index(min(values)), values.index(max(values))}
    last = -math.inf
    for i, (x, _) in enumerate(coords):
        if x - last >= MARKER_GAP:
            keep.add(i)
            last = x
    return sorted(keep)


def _axes(panel: _Panel) -> list[str]:
    left, right = panel.x + PLOT["left"], panel.x + panel.width - PLOT["right"]
    top, bottom = panel.y + PLOT["top"], panel.y + panel.height - PLOT["bottom"]
    out = [
        f'<line x1="{left:.1f}" y1="{bottom:.1f}" x2="{right:.1f}" y2="{bottom:.1f}" stroke="#888" class="gf-axis"/>',
        f'<line x1="{left:.1f}" y1="{top:.1f}" x2="{left:.1f}" y2="{bottom:.1f}" stroke="#888" class="gf-axis"/>',
    ]
    low, high = panel.values
    y_ticks = _ticks(low, high)
    step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else abs(high - low) or 1.0
    for value in y_ticks:
        y = panel.py(value)
        out.append(
            f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="#eee" class="gf-grid"/>'
            f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" fill="#555" font-size="11" '
            f'class="gf-tick">{_e(_tick_label(value, step))}</text>'
        )
    first, last = panel.versions
    x_ticks = [first] if first == last else _ticks(first, last, 6, whole=True)
    for number in x_ticks:
        x = panel.px(number)
        out.append(
            f'<line x1="{x:.1f}" y1="{bottom:.1f}" x2="{x:.1f}" y2="{bottom + 4:.1f}" stroke="#888"/>'
            f'<text x="{x:.1f}" y="{bottom + 16:.1f}" text-anchor="middle" fill="#555" font-size="11" '
            f'class="gf-tick">@{number:.0f}</text>'
        )
    return out


# ---------------------------------------------------------------------------- lineage

BOX_HEIGHT = 40
ROW = 58
GAP = 64
MARGIN = 16
CHAR = 7.0
"""Pixels per character of a 12 px label (a little wider than the average sans-serif letter)."""
LABEL = 34
"""Characters of a ref shown in a box (the whole ref is in its tooltip)."""


def lineage_graph(lineage: Lineage, href: Callable[[LineageNode], str | None] | None = None) -> Markup:
    """A version's lineage as an SVG graph: the version asked about in the middle (bold), what it was made
    from to its left and what was made from it to its right, one column per hop (a node's column is its
    longest path from the root, so every arrow points right, from an input to what was made from it).

    Each node is a box with its ref; dropped versions (garbage collected: the record is a tombstone) are
    dashed and grey, versions of a store that could not be read are dotted, and a node whose own inputs
    were not followed (the depth limit) has a dashed stub on its left. A box's ``<title>`` tells its ref,
    store, time, author, message or why it could not be read; it links to ``href(node)`` when that is a URL.
    """
    columns = _columns(lineage)
    order = _ordered(lineage, columns)
    width_of = {n.id: _box_width(n) for n in lineage.nodes}
    firsts = sorted(order)
    column_width = max(width_of.values(), default=120) + GAP
    height = max((len(v) for v in order.values()), default=1) * ROW + 2 * MARGIN - (ROW - BOX_HEIGHT)
    place: dict[str, tuple[float, float]] = {}
    for column in firsts:
        for row, node_id in enumerate(order[column]):
            x = MARGIN + (column - firsts[0]) * column_width + 24  # room for a "not followed" stub
            place[node_id] = (x, MARGIN + row * ROW)
    body = [
        _edge(place, width_of, e.source, e.target) for e in lineage.edges if e.source in place and e.target in place
    ]
    body += [_node(lineage, n, place[n.id], width_of[n.id], href) for n in lineage.nodes]
    width = MARGIN * 2 + 24 + len(firsts) * column_width - GAP
    return _svg(max(width, 200), max(height, 72), f"lineage of {lineage.root}", body, "gf-lineage")


def _columns(lineage: Lineage) -> dict[str, int]:
    """Each node's column: minus its longest path to the root (upstream), or its longest path from the root
    (downstream); a node reached neither way (none should be) stays in the root's column. Bounded passes,
    so a forged cycle cannot loop."""
    ids = {n.id for n in lineage.nodes}
    edges = [(e.source, e.target) for e in lineage.edges if e.source in ids and e.target in ids]
    column: dict[str, int] = {lineage.root: 0}
    for _ in range(len(ids) + 1):
        changed = False
        for source, target in edges:
            if target in column and column[target] <= 0 and column.get(source, 1) > column[target] - 1:
                column[source] = column[target] - 1  # an input: left of what it made
                changed = True
            if source in column and column[source] >= 0 and column.get(target, -1) < column[source] + 1:
                column[target] = column[source] + 1  # made from it: right of its input
                changed = True
        if not changed:
            break
    return {node_id: column.get(node_id, 0) for node_id in ids}


def _ordered(lineage: Lineage, columns: dict[str, int]) -> dict[int, list[str]]:
    """The nodes of each column, top to bottom: by the mean row of their neighbours in the column nearer the
    root (fewer crossings), then by ref."""
    by_column: dict[int, list[str]] = {}
    for node_id in sorted(columns, key=lambda i: (abs(columns[i]), i)):
        by_column.setdefault(columns[node_id], []).append(node_id)
    row: dict[str, int] = {lineage.root: 0}
    neighbours: dict[str, list[str]] = {}
    for e in lineage.edges:
        neighbours.setdefault(e.source, []).append(e.target)
        neighbours.setdefault(e.target, []).append(e.source)
    for column in sorted(by_column, key=abs):
        inner = column - 1 if column > 0 else column + 1

        def weight(node_id: str, inner: int = inner) -> tuple[float, str]:
            near = [row[n] for n in neighbours.get(node_id, []) if columns.get(n) == inner and n in row]
            return (sum(near) / len(near) if near else math.inf, node_id)

        by_column[column].sort(key=weight)
        row.update((node_id, i) for i, node_id in enumerate(by_column[column]))
    return by_column


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _second_line(node: LineageNode) -> str:
    if node.external:
        return "store not readable"
    if node.dropped:
        return "dropped"
    return node.created_at.strftime("%Y-%m-%d %H:%M UTC") if node.created_at else ""


def _box_width(node: LineageNode) -> float:
    text = max(len(_short(node.ref, LABEL)), len(_second_line(node)) * 0.85)
    return max(120.0, text * CHAR + 20)


def _tooltip(lineage: Lineage, node: LineageNode) -> str:
    parts = [node.ref if node.store == lineage.store else f"{node.ref} in {node.store}"]
    if node.dropped:
        parts.append("dropped by garbage collection")
    if node.external:
        parts.append(f"could not be read: {node.note}" if node.note else "could not be read")
    if node.created_at:
        parts.append(f"created {node.created_at:%Y-%m-%d %H:%M UTC}")
    if node.author and (node.author.user or node.author.host):
        parts.append(f"by {node.author.user or '?'}@{node.author.host or '?'}")
    if node.message:
        parts.append(_short(node.message, 200))
    if node.more:
        parts.append("made from inputs not followed (the depth limit)")
    return "\n".join(parts)


def _node(
    lineage: Lineage,
    node: LineageNode,
    at: tuple[float, float],
    width: float,
    href: Callable[[LineageNode], str | None] | None,
) -> str:
    x, y = at
    root = node.id == lineage.root
    kind = "dropped" if node.dropped else "external" if node.external else "root" if root else "version"
    stroke, fill, text = {
        "dropped": ("#999", "#f4f4f4", "#777"),
        "external": ("#999", "#fafafa", "#777"),
        "root": ("#2f5d8a", "#eaf1f8", "#111"),
        "version": ("#4e79a7", "#fff", "#111"),
    }[kind]
    dash = {"dropped": ' stroke-dasharray="6 4"', "external": ' stroke-dasharray="2 3"'}.get(kind, "")
    parts = [
        f'<g class="gf-node gf-node-{kind}" data-ref="{_e(node.ref)}"><title>{_e(_tooltip(lineage, node))}</title>',
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{BOX_HEIGHT}" rx="6" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{3 if root else 1.5}"{dash}/>',
        f'<text x="{x + 10:.1f}" y="{y + 17:.1f}" fill="{text}" font-weight="{600 if root else 400}" '
        f'class="gf-node-ref">{_e(_short(node.ref, LABEL))}</text>',
        f'<text x="{x + 10:.1f}" y="{y + 32:.1f}" fill="#777" font-size="10" class="gf-node-note">'
        f"{_e(_second_line(node))}</text>",
    ]
    if node.more:
        mid = y + BOX_HEIGHT / 2
        parts.append(
            f'<line x1="{x - 22:.1f}" y1="{mid:.1f}" x2="{x:.1f}" y2="{mid:.1f}" stroke="#999" '
            'stroke-dasharray="3 3" class="gf-not-followed"/>'
            f'<text x="{x - 24:.1f}" y="{mid + 4:.1f}" text-anchor="end" fill="#999">…</text>'
        )
    parts.append("</g>")
    group = "".join(parts)
    url = href(node) if href is not None else None
    return f'<a href="{_e(url)}" class="gf-node-link">{group}</a>' if url else group


def _edge(place: dict[str, tuple[float, float]], width_of: dict[str, float], source: str, target: str) -> str:
    sx, sy = place[source]
    tx, ty = place[target]
    x1, y1 = sx + width_of[source], sy + BOX_HEIGHT / 2
    x2, y2 = tx - 2, ty + BOX_HEIGHT / 2
    bend = max(24.0, abs(x2 - x1) / 2)
    path = f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2 - 6:.1f},{y2:.1f}"
    head = f"{x2:.1f},{y2:.1f} {x2 - 8:.1f},{y2 - 4.5:.1f} {x2 - 8:.1f},{y2 + 4.5:.1f}"
    return (
        f'<g class="gf-edge"><path d="{path}" fill="none" stroke="#8a9bb0" stroke-width="1.5"/>'
        f'<polygon points="{head}" fill="#8a9bb0"/></g>'
    )
