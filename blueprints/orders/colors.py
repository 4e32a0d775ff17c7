"""Color Coding: the status colours of each integration as a stylesheet, with text that stays readable.

The panel's Content-Security-Policy allows no inline styles, so the colours come as a small stylesheet of
the account's own (`/orders/colors.css`), cached by a hash of what it holds. Text on a colour is black or
white, whichever contrasts more (WCAG 2 relative luminance): at least 4.5:1 for any colour, so a seller's
choice can never make a row unreadable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sync.statuses import CanonicalStatus

BLACK = (0, 0, 0)
WHITE = (255, 255, 255)
RGB = tuple[int, int, int]


def parse(color: str) -> RGB:
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def luminance(rgb: RGB) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(value) for value in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_on(background: RGB) -> RGB:
    return BLACK if contrast(background, BLACK) >= contrast(background, WHITE) else WHITE


def tint(color: RGB, rate: int) -> RGB:
    """The colour at `rate` per cent over the page's white background."""
    return tuple(round(c * rate / 100 + 255 * (100 - rate) / 100) for c in color)  # type: ignore[return-value]


def css(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass(frozen=True)
class Palette:
    """One integration's Color Coding settings."""

    integration_id: int
    colors: dict[CanonicalStatus, str]
    badges: bool  # Status Color Coding
    rows: bool  # Status Row Color Coding
    rate: int  # Color Coding Rate

    def badge_class(self, status: str | None) -> str:
        return f"st-{self.integration_id}-{status}" if self.badges and status else ""

    def row_class(self, status: str | None) -> str:
        return f"tint-{self.integration_id}-{status}" if self.rows and status else ""


def stylesheet(palettes: Iterable[Palette]) -> str:
    rules = []
    for palette in palettes:
        for status, color in palette.colors.items():
            rgb = parse(color)
            if palette.badges:
                rules.append(
                    f".badge.st-{palette.integration_id}-{status.value}"
                    f"{{background-color:{css(rgb)};color:{css(text_on(rgb))}}}"
                )
            if palette.rows:
                row = tint(rgb, palette.rate)
                rules.append(
                    f"#orders tr.tint-{palette.integration_id}-{status.value}>td"
                    f"{{background-color:{css(row)};color:{css(text_on(row))}}}"
                )
    return "\n".join(rules) + "\n"


def fingerprint(palettes: Iterable[Palette]) -> str:
    text = repr(
        sorted((p.integration_id, sorted(p.colors.items()), p.badges, p.rows, p.rate) for p in palettes)
    )
    return hashlib.sha1(text.encode()).hexdigest()[:12]
