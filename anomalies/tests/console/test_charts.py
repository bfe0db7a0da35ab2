from __future__ import annotations

import xml.etree.ElementTree as ET

from anomalies.charts import heat_legend_svg, heatmap_svg, series_chart_svg

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
    others = [float(c.get("cy")) for c in svg.iter(f"{SVG}circle") if c.get("class") == "point"]
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


def test_a_far_outlier_is_drawn_off_scale_so_the_rest_stays_readable():
    labels = [f"2024-{m:02d}" for m in range(1, 13)]
    values = [100.0 + (m % 3) for m in range(12)]
    values[5] = 10_000.0  # x100
    svg = _parse(series_chart_svg(labels=labels, values=values, marked=[5], expected=[101.0] * 12))
    label = svg.find(f".//{SVG}text[@class='off-scale']")
    assert label is not None and "10.0k" in label.text
    # The ordinary points spread over the plot instead of sitting on one line at the bottom.
    ys = [float(c.get("cy")) for c in svg.iter(f"{SVG}circle") if c.get("class") == "point"]
    ordinary = [y for i, y in enumerate(ys) if i != 5]
    assert max(ordinary) - min(ordinary) > 50
    # The outlier sits at the top edge of the plot, above every ordinary point.
    assert ys[5] < min(ordinary)


def test_points_near_the_range_are_kept_on_scale():
    values = [100.0, 102.0, 98.0, 101.0, 140.0, 99.0]
    svg_text = series_chart_svg(labels=list("abcdef"), values=values, marked=[4])
    assert "off scale" not in svg_text


def test_an_absent_posting_and_the_current_month_are_drawn_as_lines():
    svg = _parse(
        series_chart_svg(
            labels=["a", "b", "c", "d"], values=[5.0, None, 5.5, 6.0], marked=[1], marked_colours=["#b91c1c"], current=1
        )
    )
    absent = svg.find(f".//{SVG}line[@class='anomaly-absent']")
    assert absent.get("stroke") == "#b91c1c" and "no line" in absent.find(f"{SVG}title").text
    assert svg.find(f".//{SVG}line[@class='current']") is not None
    assert svg.find(f".//{SVG}g[@class='legend']") is not None


def test_band_with_gaps_is_drawn_in_pieces():
    svg = _parse(
        series_chart_svg(
            labels=list("abcde"),
            values=[1.0, 2.0, 3.0, 2.0, 1.0],
            band_low=[0.0, 1.0, None, 1.0, 0.0],
            band_high=[2.0, 3.0, None, 3.0, 2.0],
        )
    )
    assert len([p for p in svg.iter(f"{SVG}polygon") if p.get("class") == "expected-band"]) == 2


def test_heatmap_tooltips_carry_details_and_the_legend_spans_the_flag_range():
    svg_text = heatmap_svg(
        rows=["IS 6010-0000"], columns=["2024-01"], cells={(0, 0): 99.0}, details={(0, 0): "critical, open"}
    )
    assert "IS 6010-0000 2024-01: score 99 (critical, open)" in svg_text
    legend = _parse(heat_legend_svg())
    fills = [r.get("fill") for r in legend.iter(f"{SVG}rect")]
    assert len(set(fills)) == len(fills) == 10  # a ramp, from the flag threshold to 100


def test_a_lone_expected_value_is_marked():
    svg = _parse(series_chart_svg(labels=list("abc"), values=[1.0, 2.0, 3.0], expected=[None, 2.5, None]))
    assert len(svg.findall(f".//{SVG}line[@class='expected-point']")) == 1
    svg = _parse(series_chart_svg(labels=list("abc"), values=[1.0, 2.0, 3.0], expected=[2.0, 2.5, None]))
    assert not svg.findall(f".//{SVG}line[@class='expected-point']")


def test_shap_bars_point_right_for_evidence_that_raised_the_score_and_escape_names():
    from anomalies.charts import shap_bars_svg

    svg = shap_bars_svg(attributions=[("vs surrounding months", 42.0), ('<b>"x"</b>', -3.0)], base_value=5.0)
    assert "vs surrounding months" in svg and "+42.0" in svg and "-3.0" in svg
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert svg.count('fill="#dc2626"') == 1 and svg.count('fill="#2563eb"') == 1
