"""Read a date (and optional time) typed by a person: `2017-05-20`, `5月20日`, `５月２０日`."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, time

_FULL = re.compile(
    r"^(?:(?P<y>\d{4})\s*[-/.年]\s*)?(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?"
    r"(?:\s*(?P<h>\d{1,2})\s*[:：点]\s*(?P<min>\d{2})?\s*分?)?$"
)


def parse_day(text: str, today: date) -> tuple[date, time | None] | None:
    """Return the date (the next such day when no year is given) and the time, or None."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    cleaned = "".join(ch for ch in cleaned if unicodedata.category(ch) != "Cf")
    match = _FULL.match(cleaned)
    if match is None:
        return None
    month, day = int(match["m"]), int(match["d"])
    try:
        if match["y"]:
            found = date(int(match["y"]), month, day)
        else:
            found = date(today.year, month, day)
            if found < today:
                found = date(today.year + 1, month, day)
    except ValueError:
        return None
    moment: time | None = None
    if match["h"] is not None:
        hour, minute = int(match["h"]), int(match["min"] or 0)
        if hour > 23 or minute > 59:
            return None
        moment = time(hour, minute)
    return found, moment
