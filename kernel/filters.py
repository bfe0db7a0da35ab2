"""Filter pieces shared by the apps' APIs."""

from __future__ import annotations

import django_filters
from django.core.validators import MaxValueValidator, MinValueValidator

# The largest id a BIGINT column (and SQLite's INTEGER) can hold: a larger number in a query
# string must be a 400, not an OverflowError from the driver.
MAX_DB_ID = 2**63 - 1


def fits_db_id(value: int) -> bool:
    return 0 <= value <= MAX_DB_ID


class IdFilter(django_filters.NumberFilter):
    """An integer id filter that refuses values no id column can hold."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("validators", [MinValueValidator(0), MaxValueValidator(MAX_DB_ID)])
        super().__init__(*args, **kwargs)
