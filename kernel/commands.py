"""What every management command shares: the ``--property`` option (one form everywhere) and
progress bars that never share a terminal line with log lines.

``--property`` takes one or more codes, as ``--property P001 P002``, ``--property P001,P002`` or the
option repeated; ``property_codes`` reads them back validated, in order, without repeats, and a
command that works on one property says so when given several.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm.contrib.logging import logging_redirect_tqdm

PROPERTY_CODE = re.compile(r"^[A-Za-z0-9_-]{1,20}\Z")
PROPERTY_HELP = "property code(s): --property P001 P002, --property P001,P002 or the option repeated"
# The loggers whose console handlers print while a bar is drawn (reims.events does not propagate).
CONSOLE_LOGGERS = ("", "reims.events")


def add_property_option(parser: CommandParser, *, help: str = PROPERTY_HELP) -> None:
    parser.add_argument("--property", dest="properties", nargs="+", action="extend", default=[], metavar="CODE", help=help)


def property_codes(options: dict[str, Any], *, at_most: int | None = None) -> list[str]:
    """The codes given with --property, validated; CommandError naming a bad one or too many."""
    codes: list[str] = []
    for raw in options.get("properties") or []:
        for code in (part.strip() for part in str(raw).split(",")):
            if not code:
                continue
            if not PROPERTY_CODE.match(code):
                raise CommandError(f"--property: bad property code {code[:40]!r} (1-20 letters, digits, '_' or '-')")
            if code not in codes:
                codes.append(code)
    if at_most is not None and len(codes) > at_most:
        raise CommandError(f"--property takes at most {at_most} code here, got {len(codes)}: {', '.join(codes)}")
    return codes


@contextmanager
def bars_with_logs() -> Iterator[None]:
    """While progress bars are drawn, log lines are written above them (tqdm.write), never into them."""
    with logging_redirect_tqdm(loggers=[logging.getLogger(name) for name in CONSOLE_LOGGERS]):
        yield
