"""Server-rendered SVG (gitfree/ui/svg.py): the metrics chart and the lineage graph are well-formed SVG, escape
every text from the store, link and title what they draw, and stay sensible at the edges (one point, equal or
negative values, 1,000 versions, 20 metrics, hostile names)."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from jinja2 import Environment
from markupsafe import Markup

from gitfree import Author, Lineage, LineageEdge, LineageNode, MetricsPoint
from gitfree.ui.svg import lineage_graph, metrics_chart

NS = {"s": "http://www.w3.org/2000/svg"}
HOSTILE = ["<script>window.__xss=1</script>", "a&b", 'say "hi"', "it's", "</svg><img src=x onerror=alert(1)>"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _points(values: dict[str, list[float | None]]) -> list[MetricsPoint]:
    count = max(len(v) for v in values.values())
    points = []
    for i in range(count):
        metrics = {name: v[i] for name, v in values.items() if i < len(v) and v[i] is not None}
        points.append(MetricsPoint(ref=f"m@{i + 1}", number=i + 1, created_at=T0 + timedelta(hours=i), metrics=metrics))
    return points[::-1]  # as Store.metrics gives them: newest first


def _parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    text = str(svg)
    assert not re.search(r"\b(nan|inf)\b", text, re.IGNORECASE), "a coordinate is not a number"
    root = ET.fromstring(text)  # noqa: S314 - our own output: well-formed XML, or this raises
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert not root.findall(".//s:script", NS) and not root.findall(".//s:style", NS)
    assert not any("style" in e.attrib or any(a.startswith("on") for a in e.attrib) for e in root.iter())
    return root


def _visible(element: ET.Element) -> str:
    """The text an element shows (its ``<title>`` child is a tooltip, not shown)."""
    return (element.text or "") + "".join(child.tail or "" for child in element)


def _titles(root: ET.Element, path: str) -> list[str]:
    return [t.text or "" for t in root.findall(f"{path}/s:title", NS)]


def test_one_line_per_metric_with_titled_linked_points() -> None:
    points = _points({"accuracy": [0.81, 0.85, 0.9], "rows": [1000, 1200, 1100], "loss": [0.5, None, 0.3]})
    root = _parse(metrics_chart(points, None, lambda n: f"/v/model@{n}"))
    lines = root.findall(".//s:polyline", NS)
    assert [line.get("data-metric") for line in lines] == ["accuracy", "loss", "rows"]
    assert [len(line.get("points", "").split()) for line in lines] == [3, 2, 3]  # loss is missing at @2
    legend = [_visible(t) for t in root.findall(".//s:text[@class='gf-legend']", NS)]
    assert legend == ["accuracy", "loss", "rows"]
    links = root.findall(".//s:a", NS)
    assert [a.get("href") for a in links] == [f"/v/model@{n}" for n in (1, 2, 3, 1, 3, 1, 2, 3)]
    assert _titles(root, ".//s:a/s:g") == [
        "accuracy @1: 0.81",
        "accuracy @2: 0.85",
        "accuracy @3: 0.9",
        "loss @1: 0.5",
        "loss @3: 0.3",
        "rows @1: 1000",
        "rows @2: 1200",
        "rows @3: 1100",
    ]
    ticks = [t.text for t in root.findall(".//s:text[@class='gf-tick']", NS)]
    assert "@1" in ticks and "@3" in ticks and "1200" in ticks  # x ticks are versions; y ticks in each unit
    y = {float(p.split(",")[1]) for p in lines[0].get("points", "").split()}
    assert len(y) == 3  # accuracy's own scale: its three values are three heights
    only = _parse(metrics_chart(points, ["rows"], lambda n: f"/v/{n}"))
    assert [line.get("data-metric") for line in only.findall(".//s:polyline", NS)] == ["rows"]


def test_store_text_is_escaped_and_the_result_embeds_as_it_is() -> None:
    points = _points({name: [1.0, 2.0] for name in HOSTILE})
    chart = metrics_chart(points, None, lambda n: f'/v/x@{n}?a="b"&c=<d>')
    root = _parse(chart)
    assert sorted(line.get("data-metric") or "" for line in root.findall(".//s:polyline", NS)) == sorted(HOSTILE)
    assert {t for t in _titles(root, ".//s:a/s:g")} >= {f"{name} @2: 2.0" for name in HOSTILE}
    assert {a.get("href") for a in root.findall(".//s:a", NS)} == {'/v/x@1?a="b"&c=<d>', '/v/x@2?a="b"&c=<d>'}
    assert "<script>" not in str(chart) and "<img" not in str(chart)
    page = Environment(autoescape=True).from_string("<div>{{ chart }}</div>").render(chart=chart)
    assert page == f"<div>{chart}</div>"  # Markup: Jinja embeds it without escaping it again


@pytest.mark.parametrize(
    ("values", "markers"),
    [
        ({"one": [5.0]}, 1),  # a single point: no line to speak of, one marker in the middle
        ({"flat": [3.0] * 10}, 10),  # equal values
        ({"zero": [0.0, 0.0]}, 2),
        ({"negative": [-5.0, -1.5, -30.0, 2.0]}, 4),
        ({"huge": [1e300, -1e300, 2**63 - 1]}, 3),
        ({"tiny": [1e-12, 3e-12]}, 2),
    ],
)
def test_edge_cases_render_sensibly(values: dict[str, list[float | None]], markers: int) -> None:
    root = _parse(metrics_chart(_points(values), None, lambda n: f"/v/{n}"))
    assert len(root.findall(".//s:a", NS)) == markers
    for circle in root.findall(".//s:circle", NS):
        x, y = float(circle.get("cx", "nan")), float(circle.get("cy", "nan"))
        assert 0 <= x <= float(root.get("width", 0)) and 0 <= y <= float(root.get("height", 0))
        assert math.isfinite(x) and math.isfinite(y)


def test_a_thousand_versions_keep_the_line_and_thin_the_markers_and_twenty_metrics_fit() -> None:
    values: dict[str, list[float | None]] = {
        f"m{k}": [math.sin(n / 40 + k) * (k + 1) for n in range(1000)] for k in range(20)
    }
    svg = metrics_chart(_points(values), None, lambda n: f"/v/{n}")
    root = _parse(svg)
    lines = root.findall(".//s:polyline", NS)
    assert len(lines) == 20 and all(len(line.get("points", "").split()) == 1000 for line in lines)
    assert [line.get("data-metric") for line in lines][:3] == ["m0", "m1", "m2"]  # m2 before m10
    markers = len(root.findall(".//s:a", NS))
    assert 20 * 20 < markers < 20 * 80, markers  # one every few pixels, not 20,000
    assert len(str(svg)) < 800_000
    assert float(root.get("height", 0)) == 10 * 150  # two columns of panels
    empty = _parse(metrics_chart([], None, lambda n: ""))
    assert [t.text for t in empty.findall(".//s:text", NS)] == ["no metrics to chart"]


def _node(ref: str, **fields: object) -> LineageNode:
    dataset, _, number = ref.rpartition("@")
    defaults: dict[str, object] = {"id": ref, "store": "s3://data/store", "created_at": T0}
    return LineageNode(ref=ref, dataset=dataset, number=int(number), **{**defaults, **fields})


def _box(root: ET.Element, ref: str) -> tuple[float, float, ET.Element]:
    group = next(g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("data-ref") == ref)
    rect = group.find("s:rect", NS)
    assert rect is not None
    return float(rect.get("x", 0)), float(rect.get("y", 0)), group


def test_lineage_is_laid_out_in_columns_by_hops_with_links_and_styles() -> None:
    hostile = "evil<script>x</script>@1"
    nodes = [
        _node("raw@12"),
        _node("old@3", dropped=True),
        _node("far@1", id="s3://other/store#far@1", store="s3://other/store", external=True, note="cannot reach"),
        _node("first@9", more=True),
        _node("features@7", author=Author(user="ana", host="w1"), message='made "fast" & <well>'),
        _node("model@4"),
        _node("report@1"),
        _node(hostile),
    ]
    edges = [
        ("first@9", "raw@12"),
        ("raw@12", "features@7"),
        ("old@3", "features@7"),
        ("s3://other/store#far@1", "features@7"),
        ("first@9", "features@7"),  # also two hops away: its column is its longest path
        ("features@7", "model@4"),
        ("model@4", "report@1"),
        ("features@7", hostile),
    ]
    lineage = Lineage(
        root="features@7",
        store="s3://data/store",
        direction="both",
        nodes=nodes,
        edges=[LineageEdge(source=a, target=b) for a, b in edges],
    )
    root = _parse(lineage_graph(lineage, lambda n: None if n.external else f"/v/{n.ref}"))
    x = {
        ref: _box(root, ref)[0] for ref in ["first@9", "raw@12", "old@3", "far@1", "features@7", "model@4", "report@1"]
    }
    assert x["first@9"] < x["raw@12"] == x["old@3"] == x["far@1"] < x["features@7"] < x["model@4"] < x["report@1"]
    assert _box(root, hostile)[0] == x["model@4"]
    kinds = {g.get("data-ref"): g.get("class") for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("data-ref")}
    assert kinds["old@3"] == "gf-node gf-node-dropped" and kinds["far@1"] == "gf-node gf-node-external"
    assert kinds["features@7"] == "gf-node gf-node-root" and kinds["raw@12"] == "gf-node gf-node-version"
    links = {a.get("href") for a in root.findall(".//s:a", NS)}
    assert links == {f"/v/{r}" for r in ("raw@12", "old@3", "first@9", "features@7", "model@4", "report@1", hostile)}
    far = _box(root, "far@1")[2].findtext("s:title", "", NS)
    assert far == "far@1 in s3://other/store\ncould not be read: cannot reach\ncreated 2026-01-01 00:00 UTC"
    tooltip = _box(root, "features@7")[2].findtext("s:title", "", NS)
    assert tooltip == 'features@7\ncreated 2026-01-01 00:00 UTC\nby ana@w1\nmade "fast" & <well>'
    assert hostile in [t.text for t in root.findall(".//s:text[@class='gf-node-ref']", NS)]
    assert len(root.findall(".//s:line[@class='gf-not-followed']", NS)) == 1  # first@9's inputs were not followed
    paths = root.findall(".//s:g[@class='gf-edge']/s:path", NS)
    assert len(paths) == len(edges)
    for path in paths:  # every arrow points right, from an input to what was made from it
        numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
        assert numbers[0] < numbers[-2], path.get("d")


def test_a_lone_version_and_a_forged_cycle_still_draw() -> None:
    alone = Lineage(root="a@1", store="s", direction="up", nodes=[_node("a@1", store="s")], edges=[])
    root = _parse(lineage_graph(alone, None))
    assert not root.findall(".//s:a", NS) and len(root.findall(".//s:rect", NS)) == 1
    cycle = Lineage(
        root="a@1",
        store="s",
        direction="both",
        nodes=[_node("a@1", store="s"), _node("b@1", store="s")],
        edges=[LineageEdge(source="a@1", target="b@1"), LineageEdge(source="b@1", target="a@1")],
    )
    assert len(_parse(lineage_graph(cycle, lambda n: f"/v/{n.ref}")).findall(".//s:rect", NS)) == 2
