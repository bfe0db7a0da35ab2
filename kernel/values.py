"""Checks of values written to the database: a value too long for its column raises, naming the
field, instead of being truncated."""

from __future__ import annotations

from django.db import models


def fitting(model: type[models.Model], field_name: str, value: str) -> str:
    """``value`` when it fits ``model.field_name``'s max_length; ValueError naming the field otherwise."""
    field = model._meta.get_field(field_name)
    limit = field.max_length if isinstance(field, models.Field) else None
    if limit is not None and len(value) > limit:
        raise ValueError(
            f"{model._meta.label}.{field_name}: {value[:20]!r}... is {len(value)} characters, the column holds {limit}"
        )
    return value
