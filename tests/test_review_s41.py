"""Review of seven commits of 2026-12-06 (table stage, seeded Dropout, --x-array,
the scikit-learn trajectory allowance, Huber's δ in explain, --diagnose's factor)."""

from __future__ import annotations

import warnings
from decimal import Decimal

import numpy as np
from test_sklearn_trajectory_hunt import (
    RoundingSpread,
    SkClassifier,
    fit_recording,
    relative_error,
)


def test_trajectory_allowance_takes_text_labels(seeded, rng):
    """The trajectory test's allowance (how far scikit-learn moves from itself when X or
    y moves by one unit in the last place) nudged y with np.nextafter whatever it held:
    labels 'no'/'yes' or 'a'..'d' (a quarter and a third of the binary and multiclass
    draws) raised numpy's TypeError in the test instead of measuring the allowance.
    Labels have no last place: X alone is nudged, as a run by hand measures it."""
    n, d = int(rng.integers(20, 80)), int(rng.integers(1, 5))
    X = rng.standard_normal((n, d))
    k = int(rng.integers(2, 5))
    codes = rng.integers(0, k, n)
    codes[:k] = np.arange(k)
    y = np.array(list("abcd"))[codes]
    params = {
        "hidden_layer_sizes": (int(rng.integers(1, 6)),),
        "solver": "adam",
        "max_iter": int(rng.integers(2, 6)),
        "random_state": int(rng.integers(2**31)),
        "epsilon": float(10 ** rng.uniform(-9, -6)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, epochs, _, _ = fit_recording(SkClassifier, params, X, y, None)
        _, moved, _, _ = fit_recording(SkClassifier, params, np.nextafter(X, np.inf), y, None)
        spread = RoundingSpread(SkClassifier, params, X, y, None, epochs)
        for epoch in range(1, len(epochs) + 1):
            expected = max(
                relative_error(u, v)
                for u, v in zip(moved[epoch - 1], epochs[epoch - 1], strict=True)
            )
            assert spread.spread(epoch) == expected, seeded.msg(f"epoch {epoch}")


def read_factor(text: str) -> tuple[str, Decimal] | None:
    """('shrinks'|'grows', the factor) read back from a --diagnose warning."""
    import re

    supers = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
    found = re.search(r"δ (shrinks|grows) (?:(\d(?:\.\d)?)·)?10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)×", text)
    if found is None:
        return None
    exponent = int(found.group(3).translate(supers))
    return found.group(1), Decimal(found.group(2) or 1) * Decimal(10) ** exponent  # past 1e308


def test_diagnose_factor_of_a_delta_of_zero_or_past_float64(seeded, rng):
    """--diagnose divided by max(‖δ¹‖, 1e-300): a first layer whose ReLUs are all dead
    (δ¹ exactly 0) was said to shrink δ '1.4·10²⁹⁹×', and past ‖δᴸ‖ ≈ 1.8e8 the quotient
    overflowed and fit(diagnose=True) stopped with OverflowError; a δ of 0 everywhere was
    said to grow '10⁰×'. Now: 'δ shrinks to 0', a factor past float64 from the
    logarithms (against Decimal's quotient), and nothing for δ = 0 everywhere."""
    from wxb.diagnose import LayerReport, warnings_for

    last = float(10 ** rng.uniform(-5, 12))
    reports = [LayerReport("dense1", 1.0, 1.0, 0.0), LayerReport("dense2", 1.0, 1.0, last)]
    (text, *_) = warnings_for(reports)
    assert text.startswith("δ shrinks to 0 from layer 2"), seeded.msg(text)
    assert read_factor(text) is None, seeded.msg(text)

    for shrinking in (True, False):
        big_log = rng.uniform(0, 300)
        ratio_log = rng.uniform(309, big_log + 322)  # a quotient past float64's 1.8e308
        big, small = float(10**big_log), float(10 ** (big_log - ratio_log))  # small: subnormal too
        ratio = Decimal(big) / Decimal(small)
        first, last = (small, big) if shrinking else (big, small)
        reports = [LayerReport("d1", 1.0, 1.0, first), LayerReport("d2", 1.0, 1.0, last)]
        (text,) = warnings_for(reports)
        said = read_factor(text)
        what = seeded.msg(f"{text} for ‖δ‖ {first:.3g} and {last:.3g}")
        assert said is not None and (said[0] == "shrinks") == shrinking, what
        assert abs(said[1] - ratio) <= Decimal("0.051") * ratio, what

    reports = [LayerReport("d1", 1.0, 1.0, 0.0), LayerReport("d2", 1.0, 1.0, 0.0)]
    assert warnings_for(reports) == [], "δ = 0 everywhere neither shrinks nor grows"


def test_fit_diagnose_with_dead_first_layer_and_large_targets(seeded, rng):
    """The case above from fit(diagnose=True): every ReLU of the first layer dead on
    the batch, targets in the 1e12s (a regression on raw prices): OverflowError."""
    import wxb
    from wxb import nn

    n, d = int(rng.integers(20, 60)), int(rng.integers(1, 5))
    X = rng.standard_normal((n, d))
    y = rng.standard_normal((n, 1)) * 10 ** rng.uniform(11, 14)
    model = nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1))
    model[0].bias.data[:] = -1e3  # Z¹ < 0 on every row: δ¹ = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = wxb.fit(
            model, X, y, epochs=1, batch_size=n, loss="mse", optimizer="sgd", lr=1e-30,
            diagnose=True, verbose=False,
        )  # fmt: skip
    said = [w for w in history.warnings if "δ shrinks" in w]
    assert said and "δ shrinks to 0" in said[0], seeded.msg(str(history.warnings))


def test_resume_of_a_checkpoint_without_dropout_keys_draws_the_runs_masks(
    seeded, rng, tmp_path, monkeypatch
):
    """A checkpoint written by a wxb before 2026-12-05 23:00 keeps no Dropout keys: that
    wxb keyed a Dropout's masks from its generator's state when the layer was made (no
    draw). Since keys are drawn at each fit, a resume of such a checkpoint drew a fresh
    key and trained the rest of the run on other masks, without a word (the weights
    off the uninterrupted run's). The run is emulated here: its keys forced to the
    layer's, its checkpoint's keys removed (and its checksum made again)."""
    import json

    import wxb
    import wxb.train as train_module
    from wxb import nn
    from wxb.checkpoint import _json_digest
    from wxb.random import key_of

    n, d, k = int(rng.integers(20, 50)), int(rng.integers(2, 6)), int(rng.integers(2, 4))
    X = rng.standard_normal((n, d))
    y = rng.integers(0, k, n)
    seeds = [int(s) for s in rng.integers(0, 2**31, 3)]
    original = train_module._row_masks

    def as_before(model, masks, shuffles, distributed):
        made = original(model, masks, shuffles, distributed)
        made.own = {g: key_of(np.random.default_rng(seeds[1])) for g in made.own}
        return made

    def build():
        wxb.manual_seed(seeds[0])
        return nn.Sequential(
            nn.Linear(d, 16), nn.ReLU(), nn.Dropout(0.5, seed=seeds[1]), nn.Linear(16, k)
        )

    kw = dict(batch_size=8, optimizer="sgd", lr=0.1, seed=seeds[2], verbose=False)
    monkeypatch.setattr(train_module, "_row_masks", as_before)
    whole = build()
    wxb.fit(whole, X, y, epochs=4, **kw)
    wxb.fit(build(), X, y, epochs=2, checkpoint_dir=tmp_path, **kw)
    monkeypatch.setattr(train_module, "_row_masks", original)
    for path in tmp_path.glob("step-*.json"):
        meta = json.loads(path.read_text())
        del meta["row_masks_own"]
        meta["json_sha256"] = _json_digest(meta)
        path.write_text(json.dumps(meta))
    resumed = build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = wxb.fit(resumed, X, y, epochs=4, checkpoint_dir=tmp_path, resume=True, **kw)
    assert history.resumed_from, "resumed"
    for name, value in whole.state_dict().items():
        assert np.array_equal(resumed.state_dict()[name], value), seeded.msg(name)


def test_explain_says_a_huber_loss_of_outputs_of_unequal_scales_is_not_trainings(
    tmp_path, seeded, rng, capsys, monkeypatch
):
    """Two outputs of unequal spreads trained by wxb train with smooth L1 or Huber:
    training's β = 1 was on each output's standardized targets (β = its scale in the
    targets' units), and explain scored β = 1 in the targets' units, said as
    'SmoothL1Loss(beta=1.0)' as if it were training's loss. It says now that it is not,
    and each output's scale."""
    import wxb
    from wxb.cli import main

    loss = ["huber", "smooth_l1"][int(rng.integers(2))]
    n = int(rng.integers(40, 80))
    X = rng.standard_normal((n, 3))
    scales = 10 ** rng.uniform(0, 3, 2)
    Y = X @ rng.standard_normal((3, 2)) * scales + rng.standard_normal((n, 2))
    rows = np.column_stack([X, Y])
    lines = ["a,b,c,t,u"] + [",".join(repr(float(v)) for v in row) for row in rows]
    (tmp_path / "reg.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    seed = str(int(rng.integers(2**31)))
    args = ["train", "--data", "reg.csv", "--target", "t,u", "--loss", loss, "--epochs", "2",
            "--hidden", "4", "--seed", seed, "-q", "-o", "m.safetensors"]  # fmt: skip
    assert main(args) == 0, seeded.msg(capsys.readouterr().err)
    model = wxb.load("m.safetensors")
    expected = model.info["target_scale"]  # the training rows' spreads: about NumPy's
    assert np.allclose(expected, np.std(Y, axis=0), rtol=0.5), seeded.msg(f"{expected}")
    capsys.readouterr()
    assert main(["explain", "m.safetensors", "--data", "reg.csv", "--rows", "2"]) == 0
    out = capsys.readouterr().out
    shown = ", ".join(f"{s:.6g}" for s in expected)
    assert "not training's" in out and f"({shown})" in out, seeded.msg(out[-1500:])


def test_npz_array_options_without_data_are_refused(seeded, rng, tmp_path, capsys, monkeypatch):
    """wxb train --x-array X (no --data: the built-in digits) trained on the digits and
    ignored the option without a word, as a file of columns did before 6ac3b6a; refused
    now in one line, exit status 2, before any training."""
    from wxb.cli import main

    monkeypatch.chdir(tmp_path)
    option = ["--x-array", "--y-array"][int(rng.integers(2))]
    name = "".join(rng.choice(list("XYZabc"), int(rng.integers(1, 4))))
    code = main(["train", option, name, "--epochs", "1", "--hidden", "2", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and option in err[0], seeded.msg(f"{code} {err}")
    assert not (tmp_path / "model.safetensors").exists(), "trained anyway"


def test_explain_says_an_old_huber_model_files_loss_is_not_trainings(
    tmp_path, seeded, rng, capsys, monkeypatch
):
    """A model file wxb train saved before it recorded target_scale (a Huber or smooth
    L1 regression): explain scored δ = 1 in the target's units and showed it as the
    model's loss without a word, where training's δ was the target's scale (unknown to
    that file). It says now that this L is not training's."""
    import wxb
    from wxb.cli import main

    loss = ["huber", "smooth_l1"][int(rng.integers(2))]
    n = int(rng.integers(40, 80))
    X = rng.standard_normal((n, 3))
    y = 10 ** rng.uniform(1, 3) * (X @ rng.standard_normal(3)) + rng.standard_normal(n)
    lines = ["a,b,c,t"] + [",".join(repr(float(v)) for v in row) for row in np.c_[X, y]]
    (tmp_path / "reg.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    args = ["train", "--data", "reg.csv", "--target", "t", "--loss", loss, "--epochs", "2",
            "--hidden", "4", "--seed", str(int(rng.integers(2**31))), "-q",
            "-o", "m.safetensors"]  # fmt: skip
    assert main(args) == 0, seeded.msg(capsys.readouterr().err)
    model = wxb.load("m.safetensors")
    model.info.pop("target_scale", None)  # as a wxb before 2026-12-06 saved it
    wxb.save(model, "old.safetensors")
    capsys.readouterr()
    assert main(["explain", "old.safetensors", "--data", "reg.csv"]) == 0
    out = capsys.readouterr().out
    assert "not training's" in out, seeded.msg(out[-1500:])


def test_explain_takes_scales_equal_to_rounding_as_one_threshold(seeded, rng):
    """Outputs whose targets are shifted copies (u = t + c) have the same spread, but
    std(t + c) is std(t) only to a few units in the last place (about half the time):
    the scales were then 'unequal' and explain scored δ = 1 in the targets' units,
    where training's δ was each output's scale. Against torch's HuberLoss/SmoothL1Loss
    of δ = 1 on each output's standardized residual, scaled back to the targets' units."""
    import torch

    from wxb.explanation import trained_loss
    from wxb.nn.losses import get_loss
    from wxb.tensor import Tensor

    for _ in range(10_000):  # targets and a shift whose spread differs in the last place
        # (some targets give the same spread for every shift tried: draw new ones then)
        t = rng.standard_normal(int(rng.integers(20, 200))) * 10 ** rng.uniform(0, 4)
        c = rng.uniform(-1e4, 1e4)
        scales = [float(np.std(t)), float(np.std(t + c))]
        if scales[0] != scales[1]:
            break
    else:
        raise AssertionError(seeded.msg("no shift changed the spread in the last place"))
    name = ["huber", "smooth_l1"][int(rng.integers(2))]
    loss = trained_loss({"target_scale": scales}, name)
    Y = rng.standard_normal((8, 2)) * scales
    P = Y + rng.standard_normal((8, 2)) * scales * rng.uniform(0.1, 3)
    ours = float(get_loss(loss)(Tensor(P), Y).data)  # (a float32 Tensor: to 1e-6)
    residual = torch.tensor((P - Y) / scales)
    zero = torch.zeros_like(residual)
    if name == "huber":  # δ = 1 on (ŷ − y)/s: s² × in the targets' units
        ref = float(
            torch.nn.HuberLoss(reduction="none", delta=1.0)(residual, zero)
            .mul(torch.tensor(scales) ** 2)
            .mean()
        )
    else:  # β = 1 on (ŷ − y)/s: s ×
        ref = float(
            torch.nn.SmoothL1Loss(reduction="none", beta=1.0)(residual, zero)
            .mul(torch.tensor(scales))
            .mean()
        )
    assert abs(ours - ref) <= 1e-6 * abs(ref), seeded.msg(f"{name}: {ours} vs torch {ref}")
