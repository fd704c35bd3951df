"""The shape ARCHITECTURE.md asks for, held by reading the code (issue 13 part A).

Update -> handler -> service -> db -> reply: a handler module opens no transaction and builds
no SQL (the frame in handlers/common.py opens the one transaction, and the throttle's gate,
ahead of every handler, reads whether a stranger holds a role); no handler reaches into
another's private names; `bot/domain` imports neither the database nor Telegram.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

HANDLERS = sorted((ROOT / "handlers").glob("*.py"))
# The frame and the gate ahead of it: the only handler modules that open a transaction.
FRAME = {"common.py", "throttle.py"}
# What a handler may take from SQLAlchemy: the session's type (a frame hook's signature).
TYPES_ONLY = {"sqlalchemy.ext.asyncio": {"AsyncSession"}, "sqlalchemy.exc": {"SQLAlchemyError"}}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.name)
def test_a_handler_opens_no_transaction_and_builds_no_sql(path: Path) -> None:
    tree = _tree(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("sqlalchemy") for a in node.names), path.name
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            allowed = TYPES_ONLY.get(node.module or "", set())
            if path.name in FRAME and node.module == "sqlalchemy.exc":
                continue  # the frame tells a briefly unavailable database from a bug
            names = {a.name for a in node.names}
            assert names <= allowed, f"{path.name} imports {names - allowed} from {node.module}"
        if (
            path.name not in FRAME
            and isinstance(node, ast.Attribute)
            and node.attr in ("read", "write")
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "db"
        ):
            raise AssertionError(f"{path.name}:{node.lineno} opens a transaction itself")


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.name)
def test_no_handler_takes_private_names_of_another(path: Path) -> None:
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("handlers"):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name} imports {private} from {node.module}"


def test_the_domain_is_pure() -> None:
    for path in sorted((ROOT / "bot" / "domain").glob("*.py")):
        for node in ast.walk(_tree(path)):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for module in modules:
                assert not module.startswith(
                    ("sqlalchemy", "telegram", "bot.db", "bot.services")
                ), f"{path.name} imports {module}"
