"""Run the `duban` command as a subprocess, the way an operator does."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


def duban_command() -> list[str]:
    """Return the installed console script, or the module as a fallback."""
    script = Path(sys.executable).parent / "duban"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli.main"]


def clean_env(**extra: str) -> dict[str, str]:
    """Return the environment without any DUBAN_* setting of the developer's, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUBAN_")}
    env.update(extra)
    return env


@dataclass
class Result:
    """What a command printed and returned."""

    code: int
    out: str
    err: str


def run_duban(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> Result:
    """Run `duban ARGS` and capture its output."""
    proc = subprocess.run(
        [*duban_command(), *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
