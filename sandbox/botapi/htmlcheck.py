"""Parse and validate Telegram-flavoured HTML (parse_mode="HTML") the way the Bot API does.

The rules follow tdlib's ``parse_html`` (the parser behind the Bot API), with one deliberate
tightening: a bare ``&`` or ``>`` in text is rejected as well, so that tests catch every missing
``html.escape`` even where the real server would happen to be lenient.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HTMLParseError", "ParsedText", "parse_html", "utf16_len"]

# Tag name -> MessageEntity type (span and blockquote are resolved from their attributes).
_TAG_TYPES: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES = " \t\r\n\v\f\0"

_Fail = Callable[[str, int], "HTMLParseError"]


class HTMLParseError(ValueError):
    """Raised when text is not valid Telegram HTML; ``description`` is the Bot API wording."""

    def __init__(self, reason: str, byte_offset: int) -> None:
        self.reason = reason
        self.byte_offset = byte_offset
        super().__init__(self.description)

    @property
    def description(self) -> str:
        """Return the error text that follows ``Bad Request: `` in the API answer."""
        return f"can't parse entities: {self.reason} at byte offset {self.byte_offset}"


@dataclass
class ParsedText:
    """Plain text plus MessageEntity dicts (offsets and lengths in UTF-16 code units)."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _OpenTag:
    name: str
    byte_pos: int
    offset: int  # UTF-16 offset in the output where the entity starts
    attrs: dict[str, str]


def utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units, the unit Telegram counts in."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _decode_entity(html: str, pos: int) -> tuple[str, int] | None:
    """Decode the character reference starting at ``html[pos] == "&"``; None if it is none."""
    n = len(html)
    i = pos + 1
    if i < n and html[i] == "#":
        i += 1
        base = 10
        if i < n and html[i] in "xX":
            base = 16
            i += 1
        digits_start = i
        digits = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
        while i < n and html[i] in digits:
            i += 1
        if i == digits_start or i >= n or html[i] != ";":
            return None
        code = int(html[digits_start:i], base)
        # Surrogates and out-of-range values cannot be encoded, so they are not entities.
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code), i + 1
    name_start = i
    while i < n and html[i].isascii() and html[i].isalpha():
        i += 1
    if i >= n or html[i] != ";":
        return None
    char = _NAMED_ENTITIES.get(html[name_start:i])
    return (char, i + 1) if char is not None else None


def parse_html(html: str) -> ParsedText:
    """Parse ``html`` into plain text and entities; raise HTMLParseError like the Bot API."""
    n = len(html)
    out: list[str] = []
    out_len = 0  # UTF-16 length of the output so far
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []

    def byte_offset(index: int) -> int:
        return len(html[:index].encode("utf-8", "surrogatepass"))

    def fail(reason: str, index: int) -> HTMLParseError:
        return HTMLParseError(reason, byte_offset(index))

    i = 0
    while i < n:
        ch = html[i]
        if ch == "&":
            decoded = _decode_entity(html, i)
            if decoded is None:
                raise fail('Character "&" must be escaped as "&amp;"', i)
            text, i = decoded
            out.append(text)
            out_len += utf16_len(text)
            continue
        if ch == ">":
            raise fail('Character ">" must be escaped as "&gt;"', i)
        if ch != "<":
            out.append(ch)
            out_len += 2 if ord(ch) > 0xFFFF else 1
            i += 1
            continue

        begin = i
        i += 1
        if i < n and html[i] == "/":
            i = _parse_end_tag(html, begin, stack, entities, out_len, fail)
        else:
            i, tag = _parse_start_tag(html, begin, fail)
            stack.append(_OpenTag(tag[0], byte_offset(begin), out_len, tag[1]))

    if stack:
        top = stack[-1]
        raise HTMLParseError(
            f'Can\'t find end tag corresponding to start tag "{top.name}"', top.byte_pos
        )
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)  # only <pre><code class="language-x"> keeps it
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return ParsedText("".join(out), entities)


def _parse_start_tag(html: str, begin: int, fail: _Fail) -> tuple[int, tuple[str, dict[str, str]]]:
    """Parse ``<name attr=...>`` at ``begin``; return the index after ``>`` and (name, attrs)."""
    n = len(html)
    i = begin + 1
    while i < n and html[i] not in _SPACES and html[i] != ">":
        i += 1
    if i >= n:
        raise fail("Unclosed start tag", begin)
    name = html[begin + 1 : i].lower()
    if name not in _TAG_TYPES:
        raise fail(f'Unsupported start tag "{name}"', begin)

    attrs: dict[str, str] = {}
    while True:
        while i < n and html[i] in _SPACES:
            i += 1
        if i >= n:
            raise fail("Unclosed start tag", begin)
        if html[i] == ">":
            i += 1
            break
        attr_start = i
        while i < n and html[i] not in _SPACES and html[i] not in "=>":
            i += 1
        attr_name = html[attr_start:i].lower()
        if not attr_name:
            raise fail(f'Empty attribute name in the tag "{name}"', begin)
        while i < n and html[i] in _SPACES:
            i += 1
        if i >= n:
            raise fail("Unclosed start tag", begin)
        if html[i] != "=":
            attrs[attr_name] = ""  # valueless attribute, e.g. <blockquote expandable>
            continue
        i += 1
        while i < n and html[i] in _SPACES:
            i += 1
        if i >= n:
            raise fail("Unclosed start tag", begin)
        if html[i] in "'\"":
            quote = html[i]
            i += 1
            value: list[str] = []
            while i < n and html[i] != quote:
                if html[i] == "&":
                    decoded = _decode_entity(html, i)
                    if decoded is not None:
                        value.append(decoded[0])
                        i = decoded[1]
                        continue
                value.append(html[i])
                i += 1
            if i >= n:
                raise fail("Unclosed start tag", begin)
            i += 1
            attrs[attr_name] = "".join(value)
        else:
            token_start = i
            while i < n and (html[i].isalnum() or html[i] in ".-"):
                i += 1
            if i >= n or (html[i] not in _SPACES and html[i] != ">"):
                raise fail("Unexpected end of name token", token_start)
            attrs[attr_name] = html[token_start:i].lower()

    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise fail('Tag "span" must have class "tg-spoiler"', begin)
    if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise fail('Tag "tg-emoji" must have a numeric attribute "emoji-id"', begin)
    return i, (name, attrs)


def _parse_end_tag(
    html: str,
    begin: int,
    stack: list[_OpenTag],
    entities: list[dict[str, Any]],
    out_len: int,
    fail: _Fail,
) -> int:
    """Parse ``</name>`` at ``begin``, close the matching entity; return the index after ``>``."""
    n = len(html)
    if not stack:
        raise fail("Unexpected end tag", begin)
    i = begin + 2
    while i < n and html[i] not in _SPACES and html[i] != ">":
        i += 1
    end_name = html[begin + 2 : i].lower()
    while i < n and html[i] in _SPACES:
        i += 1
    if i >= n or html[i] != ">":
        raise fail("Unclosed end tag", begin)
    top = stack.pop()
    if end_name and end_name != top.name:
        raise fail(f'Unmatched end tag, expected "</{top.name}>", found "</{end_name}>"', begin)
    length = out_len - top.offset
    if length > 0:  # Telegram drops empty entities silently
        entities.append(_make_entity(top, length, entities))
    return i + 1


def _make_entity(tag: _OpenTag, length: int, entities: list[dict[str, Any]]) -> dict[str, Any]:
    """Build the MessageEntity dict for a closed tag."""
    entity: dict[str, Any] = {"type": _TAG_TYPES[tag.name], "offset": tag.offset, "length": length}
    if tag.name == "a":
        entity["url"] = tag.attrs.get("href", "")
    elif tag.name == "tg-emoji":
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    elif tag.name == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif tag.name == "pre":
        # <pre><code class="language-x">…</code></pre> becomes one pre entity with a language.
        inner = entities[-1] if entities else None
        if (
            inner is not None
            and inner["type"] == "code"
            and (inner["offset"], inner["length"]) == (tag.offset, length)
        ):
            entities.pop()
            if "language" in inner:
                entity["language"] = inner["language"]
    elif tag.name == "code":
        css = tag.attrs.get("class", "")
        if css.startswith("language-"):
            entity["language"] = css.removeprefix("language-")
    return entity
