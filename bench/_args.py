"""The argparse types the benchmark scripts share: whole numbers with a floor, and
comma-separated names from a fixed set. Each rejects with argparse's own error, so the
scripts' messages read alike."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection


def at_least(floor: int, text: str) -> int:
    """``text`` as a whole number, refused below ``floor``."""
    value = int(text)
    if value < floor:
        raise argparse.ArgumentTypeError(f"must be ≥ {floor}; got {value}")
    return value


# argparse names the type function in its error for text that is no number at all
# ("invalid positive_int value: 'x'"): each floor keeps a function of its own.
def positive_int(text: str) -> int:
    return at_least(1, text)


def at_least_two(text: str) -> int:
    return at_least(2, text)


def names(allowed: Collection[str], what: str = "") -> Callable[[str], list[str]]:
    """A type for a comma-separated list of names, each one of ``allowed`` (at least one);
    ``what`` (e.g. "config") names them in the error."""
    label = f"{what} " if what else ""

    def parse(text: str) -> list[str]:
        chosen = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in chosen if n not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"unknown {label}{', '.join(unknown) or text!r}; choose from {', '.join(allowed)}"
            )
        return chosen

    return parse
