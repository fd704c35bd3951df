"""Map key paths of a TOML document to the line numbers they are written on."""

from __future__ import annotations

import re
from collections.abc import Sequence

PathItem = str | int
Path = tuple[PathItem, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _split_key(text: str) -> list[str] | None:
    """Split a (dotted, possibly quoted) TOML key; None if it is not a key."""
    parts: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        if text[i] in "\"'":
            quote = text[i]
            j = i + 1
            buf = []
            while j < n and text[j] != quote:
                if quote == '"' and text[j] == "\\" and j + 1 < n:
                    buf.append(text[j + 1])
                    j += 2
                    continue
                buf.append(text[j])
                j += 1
            parts.append("".join(buf))
            i = j + 1
        else:
            match = _BARE.match(text, i)
            if match is None:
                return None
            parts.append(match.group(0))
            i = match.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n:
            if text[i] != ".":
                return None
            i += 1
    return parts or None


class _ValueScanner:
    """Track strings and brackets so multi-line values are skipped as one."""

    def __init__(self) -> None:
        self.depth = 0
        self.multiline: str | None = None

    @property
    def open(self) -> bool:
        return self.depth > 0 or self.multiline is not None

    def feed(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            if self.multiline is not None:
                end = text.find(self.multiline, i)
                if end < 0:
                    return
                i = end + 3
                self.multiline = None
                continue
            ch = text[i]
            if ch == "#":
                return
            if text.startswith('"""', i) or text.startswith("'''", i):
                self.multiline = text[i : i + 3]
                i += 3
                continue
            if ch in "\"'":
                j = i + 1
                while j < n and text[j] != ch:
                    j += 2 if (ch == '"' and text[j] == "\\") else 1
                i = j + 1
                continue
            if ch in "[{":
                self.depth += 1
            elif ch in "]}":
                self.depth = max(0, self.depth - 1)
            i += 1


def _find_equals(line: str) -> int:
    """Return the index of the `=` that ends the key part of a line, or -1."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return i
        elif ch == "#":
            return -1
    return -1


class LineIndex:
    """Where each table and key of a TOML document is written."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path, int] = {}
        counts: dict[Path, int] = {}
        current: Path = ()
        scanner = _ValueScanner()
        for number, raw in enumerate(text.splitlines(), start=1):
            if scanner.open:
                scanner.feed(raw)
                continue
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[["):
                end = line.find("]]")
                parts = _split_key(line[2:end]) if end > 0 else None
                if parts is None:
                    continue
                base = self._resolve(parts[:-1], counts)
                array = (*base, parts[-1])
                index = counts.get(array, -1) + 1
                counts[array] = index
                current = (*array, index)
                self.lines.setdefault(array, number)
                self.lines[current] = number
                continue
            if line.startswith("["):
                end = line.find("]")
                parts = _split_key(line[1:end]) if end > 0 else None
                if parts is None:
                    continue
                current = self._resolve(parts, counts)
                self.lines[current] = number
                continue
            eq = _find_equals(line)
            if eq <= 0:
                continue
            parts = _split_key(line[:eq])
            if parts is None:
                continue
            path = (*current, *parts)
            self.lines.setdefault(path, number)
            # An error inside a multi-line value is reported on its key's line.
            scanner.feed(line[eq + 1 :])

    def _resolve(self, parts: Sequence[str], counts: dict[Path, int]) -> Path:
        """Turn a header's key parts into a path, entering the latest element of arrays."""
        path: Path = ()
        for part in parts:
            path = (*path, part)
            if path in counts:
                path = (*path, counts[path])
        return path

    def line_of(self, path: Sequence[PathItem]) -> int | None:
        """Return the line of the path, or of its nearest written ancestor."""
        probe = tuple(path)
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            probe = probe[:-1]
        return None


def format_path(path: Sequence[PathItem]) -> str:
    """Write a key path the way people read it: `phases[2].tasks[0].due`."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += ("." if out else "") + item
    return out
