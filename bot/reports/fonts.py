"""The Chinese font charts are drawn in, and which characters it can draw."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

# System fonts that also draw Simplified Chinese, tried when the packaged font is missing.
SYSTEM_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Sarasa Gothic SC",
    "Microsoft YaHei",
    "PingFang SC",
)


class FontMissing(RuntimeError):
    """No font that draws Chinese is installed."""


@cache
def cjk_font_path() -> Path:
    """Return the font file for Chinese text: the packaged Noto Sans SC, else a system font."""
    try:
        from pylopdf_fonts_zh_cn import sans_path

        path = sans_path()
        if path.is_file():
            return path
    except ImportError:
        pass
    from matplotlib import font_manager

    by_name = {entry.name: Path(entry.fname) for entry in font_manager.fontManager.ttflist}
    for family in SYSTEM_FAMILIES:
        if family in by_name:
            log.info("drawing Chinese text with the system font %s", family)
            return by_name[family]
    raise FontMissing("no Chinese font: install the package pylopdf-fonts-zh-cn (pip install -e .)")


@cache
def cjk_family() -> str:
    """Register the Chinese font with matplotlib once and return its family name."""
    from matplotlib import font_manager

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    name: str = font_manager.FontProperties(fname=str(path)).get_name()
    return name


@cache
def _codepoints(path: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True, fontNumber=0) as font:
        return frozenset(font.getBestCmap())


def missing_glyphs(text: str, path: Path | None = None) -> set[str]:
    """Return the characters of `text` (spaces aside) that the font has no glyph for."""
    codepoints = _codepoints(path or cjk_font_path())
    return {ch for ch in text if not ch.isspace() and ord(ch) not in codepoints}
