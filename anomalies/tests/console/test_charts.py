from __future__ import annotations

import xml.etree.ElementTree as ET

from anomalies.charts import heatmap_svg, series_chart_svg

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output


def test_series_chart_marks_the_anomalous_point_and_draws_band():
    labels = [f"2024-{m:02d}" for m in range(1, 13)]
    values = [100.0] * 12
    values[7] = 1000.0
    svg = _parse(
        series_chart_svg(
            labels=labels,
            values=values,
            expected=[100.0] * 12,
            band_low=[90.0] * 12,
            band_high=[110.0] * 12,
            marked=[7],
            title="6010-0000 Utilities",
        )
    )
    marked = [c for c in svg.iter(f"{SVG}circle") if c.get("class") == "anomaly-point"]
    assert len(marked) == 1
    assert "2024-08" in marked[0].find(f"{SVG}title").text
    # The marked point is the highest on screen (smallest y) since it is the largest value.
    others = [float(c.get("cy")) for c in svg.iter(f"{SVG}circle") if c.get("class") != "anomaly-point"]
    assert float(marked[0].get("cy")) < sorted(others)[len(others) // 2]
    assert svg.find(f".//{SVG}polygon").get("class") == "expected-band"
    assert svg.find(f".//{SVG}path[@class='expected']") is not None


def test_series_chart_skips_missing_values_and_escapes_labels():
    svg_text = series_chart_svg(labels=["<a>", "b&c", "d"], values=[1.0, None, 3.0], title="x<y")
    svg = _parse(svg_text)
    actual = svg.find(f".//{SVG}path[@class='actual']").get("d")
    assert actual.count("M") == 2  # the gap lifts the pen
    assert "<a>" not in svg_text and "&lt;a&gt;" in svg_text


def test_series_chart_constant_and_empty_series():
    _parse(series_chart_svg(labels=["a", "b"], values=[5.0, 5.0]))
    assert "no data" in series_chart_svg(labels=[], values=[])


def test_heatmap_colours_scored_cells_and_links_them():
    svg_text = heatmap_svg(
        rows=["4010-0000", "5010-0000"],
        columns=["2024-01", "2024-02"],
        cells={(0, 1): 95.0, (1, 0): 10.0},
        links={(0, 1): "/admin/anomalies/anomalydetection/7/change/"},
    )
    svg = _parse(svg_text)
    rects = list(svg.iter(f"{SVG}rect"))
    assert len(rects) == 4
    fills = {r.find(f"{SVG}title").text: r.get("fill") for r in rects}
    assert fills["4010-0000 2024-02: score 95"] != fills["5010-0000 2024-01: score 10"]
    assert fills["4010-0000 2024-01"] == "#f3f4f6"
    links = list(svg.iter(f"{SVG}a"))
    assert [a.get("href") for a in links] == ["/admin/anomalies/anomalydetection/7/change/"]
