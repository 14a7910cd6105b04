"""The console command's help: every sentence whole on its line, at any width wide enough."""

import re

import click
import typer
from typer.testing import CliRunner

from trustfabric.cli import app

ENDS_A_SENTENCE = re.compile(r"[.:!?)]$")


def commands(group: click.Group, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += commands(command, [*path, name])
        else:
            found.append([*path, name])
    return found


def test_help_texts_break_lines_only_between_sentences() -> None:
    runner = CliRunner()
    for path in commands(typer.main.get_command(app), []):  # type: ignore[arg-type]
        output = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "300"}).output
        lines = [line.strip() for line in output.splitlines()]
        prose = lines[lines.index(next(x for x in lines if x.startswith("Usage:"))) + 1:]
        prose = prose[:next(i for i, x in enumerate(prose) if x.startswith("╭"))]
        for line in filter(None, prose):
            assert ENDS_A_SENTENCE.search(line), (path, line)
        # the list of commands: one row each, none continued on the next
        for row in (x for x in output.splitlines() if x.startswith("│ ")):
            assert not row.startswith("│  "), (path, row)
