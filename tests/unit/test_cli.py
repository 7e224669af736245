"""The command line as a user meets it: an example in every --help, one line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import EXAMPLES, cli, commands
from tests.conftest import clean_env, run_cli


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_command_shows_an_example_in_its_help(name: str) -> None:
    assert name in EXAMPLES, f"`sessionflow {name}` has no example"
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0
    assert f"Example:\n    {EXAMPLES[name]}" in result.output
    assert f"sessionflow {name}" in EXAMPLES[name]


def test_no_example_names_a_command_that_does_not_exist() -> None:
    assert set(EXAMPLES) <= set(commands())


def test_an_unexpected_failure_is_one_line_and_verbose_shows_the_detail(tmp_path: Path) -> None:
    # A data directory that is a file: an OS error no step names, so "unexpected".
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_name": "page_view"}\n')
    not_a_directory = tmp_path / "data"
    not_a_directory.write_text("a file where the data directory should be")
    env = {"SESSIONFLOW_DATA_DIR": str(not_a_directory)}

    quiet = CliRunner().invoke(cli, ["import", str(events)], env=env)
    assert quiet.exit_code == 1
    (line,) = [line for line in quiet.output.splitlines() if line.startswith("Error:")]
    assert line.startswith("Error: NotADirectoryError: ")
    assert line.endswith("(run with --verbose for the detail)")
    assert "Traceback" not in quiet.output

    # In a process of its own, as a user runs it: the log goes to stderr.
    verbose = run_cli(clean_env(**env), "--verbose", "import", str(events))
    assert verbose.returncode == 1
    assert "Traceback" in verbose.stderr
    assert "(run with --verbose" not in verbose.stderr
