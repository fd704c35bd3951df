"""Figures for docs/reliability.md, recorded by the tests that produce them.

A test calls `record(category, attack, cases, result)`; at the end of a green run the figures
are written to build/docs/figures/reliability.json and rendered as the table in
build/docs/reliability.md (tests/conftest.py's `pytest_sessionfinish`); `pytest
--publish-docs` refreshes the tracked copies in docs/ too (tests/outputs.py). Nothing is
written from memory: a row exists only if a test ran it in this session.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from tests import outputs

FIGURES = "figures/reliability.json"
KINDS = "figures/message_kinds.json"
DOC = "reliability.md"
CATEGORIES = ("abuse", "faults", "bad input", "data safety")


@dataclass
class Row:
    """One attack, fault or bad input tried, how often, and what came of it."""

    category: str
    attack: str
    cases: int
    result: str
    losses: int = 0


_ROWS: list[Row] = []


@dataclass
class Kind:
    """One kind of update people send, what the bot does with it, and the test that holds it."""

    kind: str
    behaviour: str
    test: str


_KINDS: list[Kind] = []


def message_kind(kind: str, behaviour: str) -> None:
    """Remember one row of the "message kinds" table, naming the running test."""
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    test = current.split(" ")[0]
    if "[" in test:  # one row per test, whichever parameter ran it
        test = test[: test.index("[")]
    _KINDS.append(Kind(kind, behaviour, test))


def record(category: str, attack: str, cases: int, result: str, losses: int = 0) -> None:
    """Remember one row of the reliability table (the test asserts the result itself)."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}")
    _ROWS.append(Row(category, attack, cases, result, losses))


def dump() -> str:
    """This process's rows and kinds as JSON (a pytest-xdist worker hands them on)."""
    return json.dumps({"rows": [asdict(r) for r in _ROWS], "kinds": [asdict(k) for k in _KINDS]})


def absorb(dumped: str) -> None:
    """Add a worker's rows and kinds (`dump`'s JSON) to this process's."""
    data = json.loads(dumped)
    _ROWS.extend(Row(**row) for row in data["rows"])
    _KINDS.extend(Kind(**kind) for kind in data["kinds"])


def write(*, whole_suite: bool = False) -> None:
    """Write the figures and the table, if this run recorded any.

    A run of the whole suite replaces every row, so that a row no test records any more
    disappears; a partial run (one file, `-k`, `-m`) keeps the rows it did not produce.
    """
    if not _ROWS and not _KINDS:
        return
    known: dict[tuple[str, str], dict[str, object]] = {}
    earlier = None if whole_suite and _ROWS else outputs.read(FIGURES)
    if earlier is not None:
        for row in json.loads(earlier):
            known[(str(row["category"]), str(row["attack"]))] = row
    for row in _ROWS:
        known[(row.category, row.attack)] = asdict(row)
    rows = sorted(
        known.values(),
        key=lambda r: (CATEGORIES.index(str(r["category"])), str(r["attack"])),
    )
    outputs.write(FIGURES, json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    lines = [
        "# Reliability",
        "",
        "Each attack, fault and bad input tried by the test suite, how many cases, and the",
        "result. This file is written by the tests (`tests/reliability.py`) from the run that",
        "produced the figures; `pytest --publish-docs` regenerates it (a run of the whole suite",
        "rewrites every row). The suite fails if a test finds a loss, so every row here reads 0.",
        "",
        "| category | attack, fault or input | cases | result | losses |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['category']} | {row['attack']} | {row['cases']:,} | {row['result']} "
            f"| {row['losses']} |"
        )
    lines += _kinds_table(whole_suite=whole_suite)
    outputs.write(DOC, "\n".join(lines) + "\n")


def _kinds_table(*, whole_suite: bool) -> list[str]:
    """Merge this run's message kinds with the earlier ones; return the table's lines."""
    known: dict[str, dict[str, str]] = {}
    earlier = None if whole_suite and _KINDS else outputs.read(KINDS)
    if earlier is not None:
        for row in json.loads(earlier):
            known[str(row["kind"])] = row
    for kind in _KINDS:
        known[kind.kind] = asdict(kind)
    rows = sorted(known.values(), key=lambda r: r["kind"])
    if not rows:
        return []
    outputs.write(KINDS, json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
    lines = [
        "",
        "## Message kinds",
        "",
        "Each kind of update people really send, what the bot does with it, and the test that",
        "holds it (SPEC §4.4, §4.5).",
        "",
        "| kind of update | what the bot does | test |",
        "|---|---|---|",
    ]
    for row in rows:
        lines.append(f"| {row['kind']} | {row['behaviour']} | `{row['test']}` |")
    return lines
