"""Where files written by a test run go: the build folder, and docs/ only when asked.

A green run writes its tables and figures (reliability table, delivery figures, the
conversation transcript) to `build/docs/<same path as under docs/>`, so an ordinary run never
touches tracked files. `pytest --publish-docs` (a deliberate refresh) writes the same files
into `docs/` as well. Readers of a figure (`read`) take the build folder's copy when one
exists, else the published one.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
BUILD = ROOT / "build" / "docs"

_publish = False


def publish(enabled: bool) -> None:
    """Also write every output into docs/ (set once by conftest from `--publish-docs`)."""
    global _publish
    _publish = enabled


def read(relative: str) -> str | None:
    """Text of one output (relative to docs/): the build copy, else the published one."""
    for base in (BUILD, DOCS):
        path = base / relative
        if path.exists():
            return path.read_text(encoding="utf-8")
    return None


def write(relative: str, text: str) -> list[Path]:
    """Write one output (relative to docs/) to the build folder, and to docs/ if publishing.

    Returns the paths written.
    """
    targets = [BUILD / relative] + ([DOCS / relative] if _publish else [])
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return targets


def write_bytes(relative: str, data: bytes) -> list[Path]:
    """Write one binary output (a screenshot) like `write`."""
    targets = [BUILD / relative] + ([DOCS / relative] if _publish else [])
    for path in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return targets
