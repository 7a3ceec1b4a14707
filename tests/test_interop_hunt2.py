"""ONNX export and PyTorch interop, second hunt: what the first did not try.

Inputs are drawn fresh on each run (the seed is printed; WXB_TEST_SEED=<seed> replays).
"""

import pytest

from wxb.errors import ConfigError
from wxb.nn import BatchNorm1d, Dense, LayerNorm, Sequential

pytest.importorskip("onnx")


@pytest.mark.parametrize("norm", ["layer", "batch"])
def test_a_norm_first_whose_width_the_next_layer_does_not_take_is_refused_by_name(
    tmp_path, seeded, norm
):
    # Sequential(LayerNorm(4), Dense(3, 2)) went past export's width check (a norm first
    # set no width) to onnx's shape inference: InferenceError 'Dimension mismatch in
    # unification between 3 and 4', naming no layer, where the docstring promises
    # ConfigError; wxb cannot run the model either
    from wxb.onnx import export

    rng = seeded.rng
    width = int(rng.integers(2, 9))
    other = width + int(rng.choice([-1, 1]))
    first = LayerNorm(width) if norm == "layer" else BatchNorm1d(width)
    after = Dense(other, 2) if rng.random() < 0.5 else LayerNorm(other)
    model = Sequential(first, after).eval()
    with pytest.raises(ConfigError, match=rf"{after.name}.*takes {other} .* gives {width}"):
        export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists(), seeded.msg("nothing written")
    with pytest.raises(Exception):  # noqa: B017 - wxb cannot run it either
        model.predict(rng.normal(size=(3, width)))
