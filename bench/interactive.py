"""Interactive first (SPEC §7, issue 14 case 8): replies and office notices during a burst.

    python -m bench.interactive                 # 10,000 nudges, as SPEC §7 states it
    python -m bench.interactive --nudges 1000   # quicker, while developing

The whole bot (Application, tick, sender, flood limits) runs against the local Bot API
server, which keeps Telegram's limits (30 a second, 1 a second into a chat) and counts any
request sent into an open retry_after. While the nudges drain, a registered person sends
/help and the office's notice of a new submission is queued, alternately every half second.
Prints p50/p95 of both latencies, the drain rate and what was lost, and writes them into
their own section of docs/performance.md (`--no-write` to only print).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from tests.crowd_world import Burst, crowd, interactive_burst, percentile

DOC = Path(__file__).parent.parent / "docs" / "performance.md"
START = "<!-- bench.interactive: start (written by python -m bench.interactive) -->"
END = "<!-- bench.interactive: end -->"


def section(burst: Burst, command: str) -> str:
    """Return the Markdown section of docs/performance.md for these figures."""
    rate = burst.nudges / burst.drain_seconds
    rows = [
        ("reply to a person's command", burst.reply),
        ("office notice of a new submission", burst.notice),
    ]
    lines = [
        START,
        "## Interactive first: replies and notices during a burst",
        "",
        f"While {burst.nudges:,} nudges drained at the limit ({rate:.1f} a second against the "
        f"local Bot API server; {burst.drain_seconds:.0f} s), measured on "
        f"{datetime.now(UTC):%Y-%m-%d} with `{command}` ({os.cpu_count()} cores):",
        "",
        "| latency | samples | p50 | p95 | target |",
        "|---|---|---|---|---|",
    ]
    for name, values in rows:
        lines.append(
            f"| {name} | {len(values)} | {statistics.median(values):.2f} s | "
            f"{percentile(values, 0.95):.2f} s | ≤ 2 s (p95) |"
        )
    lines += [
        "",
        f"Lost: {burst.lost} of {burst.nudges:,}; 429 answers: {burst.count_429}; requests "
        f"sent into an open retry_after: {burst.violations}.",
        END,
    ]
    return "\n".join(lines)


def write(text: str) -> None:
    """Replace this benchmark's section of docs/performance.md (or append it)."""
    doc = DOC.read_text(encoding="utf-8")
    if START in doc and END in doc:
        before, rest = doc.split(START, 1)
        after = rest.split(END, 1)[1]
        doc = before + text + after
    else:
        doc = doc.rstrip("\n") + "\n\n" + text + "\n"
    DOC.write_text(doc, encoding="utf-8")


async def run(nudges: int) -> Burst:
    """Start the bot on a fresh SQLite database and measure one burst."""
    with tempfile.TemporaryDirectory() as tmp:
        async with crowd(Path(tmp), 3) as world:
            return await interactive_burst(world, nudges)


def main() -> None:
    """Parse the arguments, run, print, write."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nudges", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true", help="only print the figures")
    args = parser.parse_args()
    burst = asyncio.run(run(args.nudges))
    command = "python -m bench.interactive" + (
        f" --nudges {args.nudges}" if args.nudges != 10_000 else ""
    )
    text = section(burst, command)
    print(text.split("\n", 2)[2].rsplit("\n", 1)[0])
    if not args.no_write:
        write(text)
        print(f"written to {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
