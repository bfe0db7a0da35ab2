"""Template tags of the analyst console: the property page's anomaly heatmap."""

from __future__ import annotations

from django import template
from django.utils.safestring import SafeString, mark_safe

from anomalies import charts, console

register = template.Library()


@register.simple_tag
def property_anomaly_heatmap(property_id: int) -> SafeString:
    """The SVG heatmap of a property's flagged anomalies (empty when it has none)."""
    return console.property_heatmap_svg(property_id=property_id)


@register.simple_tag
def heat_legend() -> SafeString:
    return mark_safe(charts.heat_legend_svg())  # noqa: S308 - constant markup
