"""Write a roster's units as plan TOML (`[[unit_kinds]]`, `[[units]]`), or into a plan file.

Keys are made from the names' pinyin (甲县总工会 -> jia-xian-zong-gong-hui), shortened to
fit the plan's key rule and made unique with a number. Names and aliases are written as TOML
basic strings with every special character escaped.
"""

from __future__ import annotations

import json
import re

from bot.intake.roster import Roster

_KEY_CHARS = re.compile(r"[^a-z0-9]+")
_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?\s*(#.*)?$")
MAX_KEY = 40


def toml_string(text: str) -> str:
    """Return text as a TOML basic string (JSON escaping is valid TOML for these)."""
    return json.dumps(text, ensure_ascii=False)


def make_key(name: str, taken: set[str], fallback: str = "unit") -> str:
    """Return a plan key for a name: its pinyin joined by '-', unique within `taken`.

    The key is added to `taken`.
    """
    from pypinyin import lazy_pinyin  # 60 MB of dictionaries: loaded only when used

    words = lazy_pinyin(name, errors=lambda chars: chars)
    base = _KEY_CHARS.sub("-", "-".join(words).lower()).strip("-")[:MAX_KEY].strip("-")
    base = base or fallback
    key, n = base, 2
    while key in taken:
        key = f"{base}-{n}"
        n += 1
    taken.add(key)
    return key


def units_toml(roster: Roster, *, kind_keys: dict[str, str] | None = None) -> str:
    """Return the `[[unit_kinds]]` and `[[units]]` tables of a roster (contacts left out).

    `kind_keys` maps a kind's name to an existing key (for kinds a plan already has).
    """
    taken_kinds: set[str] = set((kind_keys or {}).values())
    keys: dict[str, str] = dict(kind_keys or {})
    lines = [f"# Units from {roster.source} ({len(roster.units)} units)."]
    for name in roster.kinds:
        if name not in keys:
            keys[name] = make_key(name, taken_kinds, "kind")
        lines += ["", "[[unit_kinds]]", f"key = {toml_string(keys[name])}"]
        lines.append(f"name = {toml_string(name)}")
    taken: set[str] = set()
    for unit in roster.units:
        lines += ["", "[[units]]", f"key = {toml_string(make_key(unit.name, taken))}"]
        lines.append(f"name = {toml_string(unit.name)}")
        lines.append(f"kind = {toml_string(keys[unit.kind])}")
        if unit.aliases:
            lines.append(f"aliases = [{', '.join(toml_string(a) for a in unit.aliases)}]")
    return "\n".join(lines) + "\n"


def replace_units(plan_text: str, block: str) -> str:
    """Return a plan's text with its unit kinds and units replaced by `block`.

    The block goes where the first `[[unit_kinds]]`/`[[units]]` table was, else before the
    first `[[phases]]`, else at the end. Other tables and comments are kept as they are.
    """
    out: list[str] = []
    skipping = False
    inserted = False
    for line in plan_text.splitlines():
        match = _TABLE.match(line)
        if match:
            name = match.group(1)
            if name in ("unit_kinds", "units"):
                skipping = True
                if not inserted:
                    out.append(block.rstrip("\n"))
                    out.append("")
                    inserted = True
                continue
            skipping = False
            if name == "phases" and not inserted:
                out.append(block.rstrip("\n"))
                out.append("")
                inserted = True
        if not skipping:
            out.append(line)
    if not inserted:
        out += ["", block.rstrip("\n")]
    return "\n".join(out) + "\n"
