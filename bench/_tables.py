"""Markdown tables and number formatting shared by the benchmark scripts."""

from __future__ import annotations

import math


def num(value: float, digits: int = 3) -> str:
    """``digits`` significant digits, without exponent notation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def table(headers: list[str], rows: list[list[str]], text_columns: int = 1) -> str:
    """A Markdown table; the first ``text_columns`` are left-aligned, the rest right."""
    widths = [max(len(c) for c in column) for column in zip(headers, *rows, strict=True)]
    rules = ["-" * w if i < text_columns else "-" * (w - 1) + ":" for i, w in enumerate(widths)]

    def line(cells: list[str]) -> str:
        padded = [
            c.ljust(w) if i < text_columns else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    return "\n".join([line(headers), line(rules), *(line(row) for row in rows)])
