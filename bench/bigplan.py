"""Generate a large plan file (units × tasks) for the benchmarks."""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

# Unit names as offices write them: a place of two or three characters and what the unit is.
PLACES = "甲乙丙丁戊己庚辛壬癸长治沙河东西南北安平阳城山水江湖海宁远新兴和华中龙凤泉林石桥"
SUFFIXES = ("县总工会", "区总工会", "市总工会", "教育工会", "交通运输工会", "集团工会", "医院工会")


def unit_name(i: int) -> tuple[str, str]:
    """Return the i-th unit's name and short alias (distinct for every i)."""
    places, n = len(PLACES), i
    place = PLACES[n % places] + PLACES[(n // places) % places]
    n //= places * places
    while n:
        place += PLACES[n % places]
        n //= places
    suffix = SUFFIXES[i % len(SUFFIXES)]
    return place + suffix, place + suffix[0]


def big_plan(units: int, tasks: int, *, key: str = "bench", start: date = date(2026, 1, 5)) -> str:
    """Return plan text with `units` units of three kinds and `tasks` tasks over five phases."""
    kinds = ["county", "industry", "enterprise"]
    out = [
        "[campaign]",
        f'key = "{key}"',
        'title = "基准测试专项工作"',
        'timezone = "Asia/Shanghai"',
        "[calendar]",
        'country = "CN"',
    ]
    for kind in kinds:
        out += ["[[unit_kinds]]", f'key = "{kind}"', f'name = "{kind}"']
    for i in range(units):
        name, alias = unit_name(i)
        out += [
            "[[units]]",
            f'key = "u{i:06d}"',
            f'name = "{name}"',
            f'kind = "{kinds[i % 3]}"',
            f'aliases = ["{alias}"]',
        ]
    phases = 5
    per_phase = max(1, tasks // phases)
    made = 0
    for p in range(phases):
        p_start = start + timedelta(days=40 * p)
        p_end = p_start + timedelta(days=39)
        out += [
            "[[phases]]",
            f'key = "p{p}"',
            f'name = "第{p + 1}阶段"',
            f"start = {p_start.isoformat()}",
            f"end = {p_end.isoformat()}",
        ]
        count = per_phase if p < phases - 1 else tasks - made
        for j in range(count):
            due = p_start + timedelta(days=1 + (j * 37) // max(1, count))
            out += [
                "  [[phases.tasks]]",
                f'  key = "t{made:03d}"',
                f'  title = "任务{made:03d}"',
                f"  due = {due.isoformat()}",
            ]
            made += 1
    return "\n".join(out) + "\n"


def main() -> None:
    """Write a big plan file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("-o", "--output", default="bench-plan.toml")
    args = parser.parse_args()
    Path(args.output).write_text(big_plan(args.units, args.tasks), encoding="utf-8")
    print(args.output)


if __name__ == "__main__":
    main()
