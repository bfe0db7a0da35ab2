"""Print one closing line 'N passed, N failed, N skipped' over several JUnit XML reports."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(paths: list[str]) -> int:
    tests = failures = errors = skipped = 0
    for path in paths:
        if not Path(path).exists():
            print(f"missing test report: {path}", file=sys.stderr)
            return 1
        root = ET.parse(path).getroot()  # noqa: S314 - our own pytest output
        suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
        for suite in suites:
            tests += int(suite.get("tests", 0))
            failures += int(suite.get("failures", 0))
            errors += int(suite.get("errors", 0))
            skipped += int(suite.get("skipped", 0))
    passed = tests - failures - errors - skipped
    failed = failures + errors
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and tests > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
