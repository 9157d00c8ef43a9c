"""`ksp`: every command explains itself, and bad options get a clear error."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.cli import app

runner = CliRunner()
COMMANDS = ["run", "ingest", "scoring", "alerts", "alerts backtest", "migrate", "topics", "simulate",
            "schemas export", "text evaluate", "bench", "settings", "deadletters list", "deadletters redrive"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) > 5


def test_the_top_level_help_lists_every_command() -> None:
    output = runner.invoke(app, ["--help"]).output
    for command in {c.split()[0] for c in COMMANDS}:
        assert command in output


def test_an_unknown_touchpoint_is_refused_with_the_valid_choices() -> None:
    result = runner.invoke(app, ["simulate", "--touchpoints", "web,bogus", "--duration", "0"])
    assert result.exit_code == 2
    assert "unknown touchpoint(s): bogus" in result.output and "call_centre" in result.output
