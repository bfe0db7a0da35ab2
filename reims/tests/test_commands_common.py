"""What every management command of the project shares (issue 19, item 12): one form of
--property, help text on every option with its choices listed, bars that do not mix with logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError

from kernel.commands import bars_with_logs, property_codes

OUR_APPS = {"anomalies", "batch_jobs", "documents", "modelcache", "reims"}
DJANGO_OPTIONS = {
    "--version",
    "--verbosity",
    "--settings",
    "--pythonpath",
    "--traceback",
    "--no-color",
    "--force-color",
    "--skip-checks",
    "--help",
}


def _our_commands() -> list[tuple[str, object]]:
    found = []
    for name, app in sorted(get_commands().items()):
        if app in OUR_APPS and Path(settings.BASE_DIR, app).is_dir():
            found.append((name, load_command_class(app, name)))
    return found


def test_every_option_has_help_and_lists_its_choices():
    commands = _our_commands()
    assert {"import_documents", "detect_anomalies", "reprocess", "invalidate_model_cache"} <= {n for n, _ in commands}
    for name, command in commands:
        parser = command.create_parser("manage.py", name)
        for action in parser._actions:
            options = set(action.option_strings)
            if options & DJANGO_OPTIONS:
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help text"
            for choice in action.choices or []:
                assert str(choice) in action.help, f"{name} {action.option_strings}: {choice} not in its help"


@pytest.mark.parametrize("name", ["detect_anomalies", "reprocess", "invalidate_model_cache", "import_documents"])
def test_property_takes_the_same_form_in_every_command(name):
    app = get_commands()[name]
    parser = load_command_class(app, name).create_parser("manage.py", name)
    extra = ["x.csv"] if name == "import_documents" else []
    forms = (["--property", "P1", "P2"], ["--property", "P1,P2"], ["--property", "P1", "--property", "P2"])
    parsed = [vars(parser.parse_args([*extra, *form])) for form in forms]
    if name == "import_documents":  # one property only: it fills or overrides the files'
        for options in parsed:
            with pytest.raises(CommandError, match="at most 1"):
                property_codes(options, at_most=1)
        assert property_codes(vars(parser.parse_args([*extra, "--property", "P1"])), at_most=1) == ["P1"]
        return
    assert [property_codes(options) for options in parsed] == [["P1", "P2"]] * 3


def test_a_bad_property_code_is_named():
    with pytest.raises(CommandError, match="bad property code 'P 1'"):
        property_codes({"properties": ["P 1"]})


def test_log_lines_are_written_above_the_bars_while_they_are_drawn():
    root = logging.getLogger()
    with bars_with_logs():
        kinds = {type(handler).__name__ for handler in root.handlers + logging.getLogger("reims.events").handlers}
    assert "_TqdmLoggingHandler" in kinds
    after = {type(handler).__name__ for handler in root.handlers}
    assert "_TqdmLoggingHandler" not in after
