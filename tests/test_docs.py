"""The documents a newcomer reads agree with the program (issue 12, item 14)."""

from __future__ import annotations

import argparse
import re
import tomllib

from bot.cli.main import _parser
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, prefix: str = "duban") -> list[str]:
    """Return every leaf command of the CLI, e.g. `duban plan example`."""
    found: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, f"{prefix} {name}")
    return found or [prefix]


def test_the_readme_command_table_names_every_command() -> None:
    table = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `duban")]
    for command in _commands(_parser()):
        words = command.split()
        assert any(
            re.search(r"`duban " + r"\S*\s*".join(map(re.escape, words[1:])), row)
            or all(w in row for w in words[1:])
            for row in rows
        ), command
    assert any("`duban --version`" in row for row in rows)


def test_the_licence_is_in_the_repository() -> None:
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT" and licence.startswith("MIT License")


def test_docs_cite_nothing_outside_the_repository() -> None:
    # docs/reliability.md is written by the test run from the tests' own words.
    written = [p for p in ROOT.glob("docs/*.md") if p.name != "reliability.md"]
    for path in [ROOT / "README.md", ROOT / "DEVELOPERS.md", *written]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bSPEC\b|shared/SPEC", text), path


def test_decisions_do_not_contradict_the_program() -> None:
    decisions = (ROOT / "docs" / "decisions.md").read_text(encoding="utf-8")
    assert "Webhook mode is refused" not in decisions
    assert "are not copied into it" not in decisions


def test_deploy_creates_the_user_it_runs_as() -> None:
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    users = set(re.findall(r"^User=(\S+)$", deploy, re.M))
    assert users
    for user in users:
        assert re.search(rf"useradd [^\n]*\b{user}$", deploy, re.M), user
