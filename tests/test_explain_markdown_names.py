"""explain's Markdown shows the data's names as they are: a class '<b>z</b>' was
rendered bold, a layer named 'w_1_x_' in italics, and a '|' cut a line. The reference is
the text rendering of the same explanation: the Markdown's text, read as CommonMark
reads it (a backslash before ASCII punctuation is that character), says the same."""

from __future__ import annotations

import re
import string

import numpy as np

from wxb import nn
from wxb.explanation import explain_model

SPECIAL = "\\`*_[]<>|~$"  # what a name can do in Markdown text (inline)
ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")  # CommonMark: any ASCII punctuation


def a_name(rng: np.random.Generator) -> str:
    pool = list(string.ascii_lowercase + SPECIAL)
    return "".join(rng.choice(pool, int(rng.integers(3, 9))))


MARK = r"^(#+ |- |\*\*Cross-check\*\* with )"  # a heading's, an item's, a check's


def text_lines(md: str):
    """explain's Markdown lines that are Markdown text: those outside its $$ LaTeX blocks."""
    math = False
    for line in md.splitlines():
        if line == "$$":
            math = not math
        elif not math:
            yield line


def unescaped_specials(line: str) -> list[str]:
    return [c for c in ESCAPED.sub("", line) if c in SPECIAL]


def test_names_in_explain_markdown_read_back_as_the_text_shows_them(rng):
    layers = {}
    for kind in ("dense", "act", "out"):
        name = a_name(rng)
        while name in layers:
            name = a_name(rng)
        layers[name] = kind
    names = list(layers)
    n_in, hidden = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    model = nn.Sequential()
    model.add_module(names[0], nn.Dense(n_in, hidden, seed=int(rng.integers(1 << 30))))
    model.add_module(names[1], nn.ReLU())
    model.add_module(names[2], nn.Dense(hidden, 2, seed=int(rng.integers(1 << 30))))
    classes = [a_name(rng), a_name(rng) + "0"]
    model.info["classes"] = classes
    X = rng.standard_normal((2, n_in)).astype(np.float32)
    y = rng.permutation(2)  # both classes: the note names each
    shown = explain_model(model, X, y, sample_rows=2)
    text = shown.text()
    md = shown.markdown()
    for name in names + classes:
        assert name in text, (name, text)
    for line in text_lines(md):
        body = re.sub(MARK, "", line).rstrip()
        assert not unescaped_specials(body), (line, md)
        plain = ESCAPED.sub(r"\1", body)
        if plain:
            assert plain in text, (plain, text)
