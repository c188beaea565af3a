"""Every command's --help reads whole in an 80-column terminal."""

from __future__ import annotations

from collections.abc import Callable

import click
import pytest
from click.testing import CliRunner, Result

from convcost.cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=lambda path: " ".join(path) or "convcost")
def test_help_fits_80_columns_without_truncated_summaries(path: tuple[str, ...]) -> None:
    """Command lists cut long first sentences to "..." at 80 columns (`plot`, `import`,
    `devices` and `calibrate` did), and examples must not wrap mid-word."""
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80,
                                catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    if isinstance(command, click.Group):
        width = 80 - 6 - max(len(name) for name in command.commands)  # click's own limit
        for name, sub in command.commands.items():
            assert sub.get_short_help_str(width) == sub.get_short_help_str(10_000), name


def test_commands_load_on_demand_and_misspellings_are_still_suggested(
        run: Callable[..., Result]) -> None:
    """Only analyze/compare load at start-up; every other command is found when asked for,
    and a misspelt one still gets click's suggestions from all of them."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, convcost.cli; print(sorted(m for m in sys.modules "
         "if m.startswith('convcost.cli.')))"], capture_output=True, text=True, check=True)
    assert "convcost.cli.analyze" in loaded.stdout and "convcost.cli.plot" not in loaded.stdout
    assert "Did you mean one of: 'check', 'schema'?" in run("chek").output
    assert run("devices", "--format", "json").exit_code == 0
