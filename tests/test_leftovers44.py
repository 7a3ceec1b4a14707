"""Leftovers of session 44: a view of shared memory kept past a distributed fit, the
names a layer called twice gets, validation_split's count, buffers as a Dense's W/b,
and a resumed run whose schedule's code changed."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys

import numpy as np
import pytest
from test_distributed import MISSING, MPIEXEC, environment

needs_mpi = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

KEPT_VIEWS = """
import sys, numpy as np, wxb
from wxb import distributed, nn
seed, where, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rng = np.random.default_rng(seed)
rows, width = int(rng.integers(40, 90)), int(rng.integers(2, 6))
X, y = rng.standard_normal((rows, width)), rng.integers(0, 3, rows)


class Watch(wxb.optim.StepLR):
    # a schedule of one's own that keeps what it watches, as a user's may (no copies)
    def __init__(self, optimizer, model):
        super().__init__(optimizer, step_size=10**9, gamma=1.0)
        self._model, self._kept = model, []

    def step(self):
        params = list(self._model.parameters())
        state = self.optimizer.state
        self._kept = [p.data for p in params] + [state[p]["exp_avg"] for p in params]
        return super().step()


retired = []
for run in range(3):
    model = nn.Sequential(nn.Dense(width, 7, seed=seed), nn.Tanh(), nn.Dense(7, 3, seed=seed + 1))
    model = model.to("float64")
    optimizer = wxb.optim.Adam(model.parameters(), lr=0.01)
    schedule = Watch(optimizer, model)
    wxb.fit(model, X, y, optimizer=optimizer, lr_schedule=schedule, epochs=2, batch_size=16,
            seed=seed, verbose=False, distributed=where == "dist")
    retired.append(len(getattr(distributed, "_RETIRED", ())))
    params = list(model.parameters())
    final = [p.data for p in params] + [optimizer.state[p]["exp_avg"] for p in params]
    # read after the fit: in one process they are the final arrays themselves
    kept = [np.array(a, copy=True) for a in schedule._kept]
    predicted = model.predict(X)
np.savez(out, *kept, *[np.array(a) for a in final], predicted=predicted,
         retired=np.array(retired))
"""


@needs_mpi
def test_views_kept_during_a_distributed_fit_still_read_its_final_values(seeded, tmp_path):
    """A p.data (or state array) that a user's schedule kept during a fit on ranks sharing
    one machine viewed the shared-memory window the fit freed when it ended: reading it
    after the fit read unmapped memory (the rank died of a segfault). In one process it
    is the final array itself; the window is now freed only once nothing views it."""
    script = tmp_path / "kept.py"
    script.write_text(KEPT_VIEWS)
    seed = str(int(seeded.rng.integers(0, 2**31)))
    argv = sys.argv
    try:
        sys.argv = [str(script), seed, "one", str(tmp_path / "one.npz")]
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv
    done = subprocess.run(
        [str(MPIEXEC), "-n", "2", sys.executable, str(script), seed, "dist",
         str(tmp_path / "dist.npz")],
        capture_output=True, text=True, timeout=120, env=environment(),
    )  # fmt: skip
    assert done.returncode == 0, seeded.msg(done.stdout + done.stderr)
    with np.load(tmp_path / "one.npz") as one, np.load(tmp_path / "dist.npz") as dist:
        count = (len(one.files) - 2) // 2
        for i in range(count):
            for run in (one, dist):
                np.testing.assert_array_equal(
                    run[f"arr_{i}"], run[f"arr_{i + count}"], err_msg=seeded.msg(f"kept {i}")
                )
            np.testing.assert_allclose(
                dist[f"arr_{i}"], one[f"arr_{i}"], rtol=1e-9, atol=1e-12, err_msg=seeded.msg(i)
            )
        np.testing.assert_allclose(dist["predicted"], one["predicted"], rtol=1e-9, atol=1e-12)
        # windows still viewed wait, but those no longer viewed are freed: few are held
        assert dist["retired"].max() <= 4, seeded.msg(dist["retired"])


def dense_names(model, X, y):
    """The name each view gives each Dense use, in order: summary, diagram, explain
    (step keys and headings), diagnostics."""
    import re

    import wxb
    from wxb.describe import architecture_diagram, backward_diagram, forward_diagram
    from wxb.diagnose import layer_reports
    from wxb.nn import CrossEntropyLoss

    summary = [row.name for row in model.summary(gemm_rate=1e9).rows if row.type == "Dense"]
    unescaped = architecture_diagram(model).replace("#35;", "#")
    diagram = re.findall(r'lay\d+\["([^"<]+) · Dense', unescaped)
    forward = re.findall(r'Layer \d+: ([^"]+)"', forward_diagram(model).replace("#35;", "#"))
    backward = re.findall(r'Layer \d+: ([^"]+)"', backward_diagram(model).replace("#35;", "#"))
    shown = wxb.explain(model, X, y, sample_rows=None)
    keys = [s.name[: -len(".Z")] for s in shown.steps if s.name.endswith(".Z")]
    headings = re.findall(r"\n   \[([^\]:]+): Dense", shown.text())
    diagnosed = [r.layer for r in layer_reports(model, X, y, CrossEntropyLoss())]
    # the backward walks the layers from the last: its headings again, in reverse
    return {
        "summary": summary,
        "architecture diagram": diagram,
        "forward diagram": forward,
        "backward diagram": backward[::-1],
        "explain keys": keys,
        "explain headings": headings[: len(keys)],
        "explain backward headings": headings[len(keys) :][::-1],
        "diagnostics": diagnosed,
    }


def test_a_dense_layer_used_again_has_one_name_in_every_view(seeded):
    """Sequential(d1, relu, d2, relu, d2, …): the summary and the diagrams named d2's
    second use by its second registration, dense2_4, explain's steps dense2#2 and its
    headings, like the diagnostics, plain dense2 (two layers of one name); each view
    now names the k-th use of a layer by its first path and k, dense2#2."""
    from wxb import nn

    rng = seeded.rng
    width = int(rng.integers(2, 6))
    count = int(rng.integers(2, 5))
    layers = [nn.Dense(width, width) for _ in range(count)]
    order = list(rng.integers(0, count, int(rng.integers(count + 1, count + 4))))
    order[int(rng.integers(1, len(order)))] = order[0]  # at least one layer used again
    stack = []
    for k in order:
        stack += [layers[k], nn.Tanh()]
    model = nn.Sequential(*stack, nn.Dense(width, 3)).to("float64")
    X, y = rng.standard_normal((3, width)), rng.integers(0, 3, 3)
    views = dense_names(model, X, y)
    # the reference: the k-th use of a layer is its first name, then #k
    first, uses, expected = {}, {}, []
    for layer in model.layers:
        if isinstance(layer, nn.Dense):
            first.setdefault(id(layer), layer.name)
            uses[id(layer)] = uses.get(id(layer), 0) + 1
            k = uses[id(layer)]
            expected.append(first[id(layer)] if k == 1 else f"{first[id(layer)]}#{k}")
    for view, names in views.items():
        assert names == expected, seeded.msg(f"{view}: {names} != {expected}")


def test_validation_split_by_class_holds_out_the_documented_count(seeded, monkeypatch):
    """fit's validation_split holds out round(rows × fraction) rows, at least one (its
    docstring); by class, the classes' own roundings were kept whenever their sum was
    within a row of rows × fraction: classes of 11 and 6 rows at 0.25 held out 5 where
    the same 17 rows as numbers hold out round(4.25) = 4 (about one table in five).
    Reference: Python's round, as documented, and the rows a regression holds out."""
    import wxb
    from wxb import data as wdata
    from wxb import nn

    held_out = []
    split = wdata.split_indices

    def recording(*args, **kwargs):
        kept, held = split(*args, **kwargs)
        held_out.append(len(held))
        return kept, held

    monkeypatch.setattr(wdata, "split_indices", recording)
    rng = seeded.rng
    cases = [([11, 6], 0.25)]
    while len(cases) < 60:
        counts = rng.integers(1, 20, size=int(rng.integers(2, 7))).tolist()
        fraction = rng.choice([0.1, 0.15, 0.2, 0.25, 0.3, 1 / 3, 0.35, 0.5, rng.uniform(0.01, 0.9)])
        if sum(counts) - max(1, round(sum(counts) * float(fraction))) >= 1:
            cases.append((counts, float(fraction)))
    for counts, fraction in cases:
        y = np.repeat(np.arange(len(counts)), counts)
        rng.shuffle(y)
        n = len(y)
        X = rng.standard_normal((n, 2))
        expected = max(1, round(n * fraction))
        msg = seeded.msg(f"classes {counts}, fraction {fraction!r}")
        for target, loss in ((y, "cross_entropy"), (y.astype(float)[:, None], "mse")):
            model = nn.Sequential(nn.Dense(2, len(counts) if loss == "cross_entropy" else 1))
            wxb.fit(model, X, target, loss=loss, epochs=1, batch_size=n, seed=1,
                    validation_split=fraction, verbose=False)  # fmt: skip
            assert held_out[-1] == expected, f"{loss}: held out {held_out[-1]}, {msg}"


@pytest.mark.parametrize("held", [("weight",), ("bias",), ("weight", "bias"), ("bias", "weight")])
def test_a_dense_whose_weights_are_buffers_saves_and_loads_back_as_it_was(seeded, tmp_path, held):
    """A Dense whose W or b a user made a buffer (del layer.weight; register_buffer, a
    constant layer as in PyTorch, whose state_dict keeps buffers): wxb.save refused it
    ("it holds arrays ['weight'] that a Dense saves"), and no model file could hold it.
    It now loads back with the same outputs (torch's F.linear on the same arrays), the
    same state_dict, and the same arrays buffers, the rest parameters."""
    import torch

    import wxb
    from wxb import nn

    rng = seeded.rng
    n, h, k = (int(v) for v in rng.integers(2, 7, 3))
    model = nn.Sequential(nn.Dense(n, h), nn.Tanh(), nn.Dense(h, k)).to("float64")
    layer = model[int(rng.choice([0, 2]))]
    for key in held:
        array = rng.standard_normal(getattr(layer, key).shape)
        delattr(layer, key)
        layer.register_buffer(key, array)
    path = tmp_path / "buffers.safetensors"
    wxb.save(model, path)
    loaded = wxb.load(path)
    X = rng.standard_normal((int(rng.integers(1, 9)), n))
    state = {key: torch.from_numpy(a) for key, a in model.state_dict().items()}
    a = torch.tanh(torch.nn.functional.linear(torch.from_numpy(X), state["dense1.weight"],
                                              state["dense1.bias"]))  # fmt: skip
    reference = torch.nn.functional.linear(a, state["dense2.weight"], state["dense2.bias"])
    np.testing.assert_allclose(loaded.predict(X), reference.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert list(loaded.state_dict()) == list(model.state_dict()), seeded.msg(held)
    for key, array in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], array)
    assert [name for name, _ in loaded.named_parameters()] == [
        name for name, _ in model.named_parameters()
    ], seeded.msg(held)
    assert [name for name, _ in loaded.named_buffers()] == [
        name for name, _ in model.named_buffers()
    ], seeded.msg(held)


def test_a_dense_weight_kept_out_of_state_dict_is_refused_saying_why(tmp_path):
    """A non-persistent buffer is no part of state_dict, so of no file: refused by name."""
    import wxb
    from wxb import nn

    model = nn.Sequential(nn.Dense(3, 2))
    weight = model[0].weight.data.copy()
    del model[0].weight
    model[0].register_buffer("weight", weight, persistent=False)
    with pytest.raises(wxb.ConfigError, match=r"dense1.*weight is a buffer .*persistent=False"):
        wxb.save(model, tmp_path / "m.safetensors")


SCHEDULE_OF_ONES_OWN = """
from wxb.optim import LambdaLR, LRSchedule

STEP = {step}


class Decay(LRSchedule):
    def __init__(self, optimizer):
        super().__init__(optimizer)
        self.start()

    def lr_at(self, epoch, base_lr=None):
        base = self.base_lr if base_lr is None else base_lr
        return base * {factor} ** epoch


def lambda_schedule(optimizer):
    return LambdaLR(optimizer, lambda epoch: 0.5 ** (epoch // STEP))
"""


def _schedule_module(factor: float, step: int) -> dict:
    namespace: dict = {"__name__": "users_schedules"}
    exec(compile(SCHEDULE_OF_ONES_OWN.format(factor=factor, step=step), "<own>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("kind", ["subclass", "lambda global"])
def test_a_resume_whose_schedule_code_changed_is_warned_of(seeded, tmp_path, kind):
    """A schedule subclass of one's own had no digest in checkpoints, and a LambdaLR's
    digest left out the globals its function reads: resumed after the code (or STEP)
    changed, the run went on silently with the new rates after the checkpoint's, a mix
    of two schedules. It now warns; the same code resumes without a word, matching an
    uninterrupted run (the reference: that run's rates and weights)."""
    import warnings

    import wxb
    from wxb import nn
    from wxb.checkpoint import CheckpointWarning

    rng = seeded.rng
    factor = float(rng.choice([0.3, 0.5, 0.7]))
    step = int(rng.integers(1, 4))
    X = rng.standard_normal((int(rng.integers(16, 40)), 3))
    y = rng.integers(0, 2, len(X))
    first, total = int(rng.integers(1, 3)), int(rng.integers(4, 7))

    def run(module: dict, epochs: int, folder):
        model = nn.Sequential(nn.Dense(3, 4, seed=1), nn.Tanh(), nn.Dense(4, 2, seed=2))
        optimizer = wxb.optim.SGD(model.to("float64").parameters(), lr=0.1)
        make = module["Decay"] if kind == "subclass" else module["lambda_schedule"]
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            history = wxb.fit(model, X, y, optimizer=optimizer, lr_schedule=make(optimizer),
                              epochs=epochs, batch_size=8, seed=1, verbose=False,
                              checkpoint_dir=folder, resume=True)  # fmt: skip
        said = [str(w.message) for w in seen if issubclass(w.category, CheckpointWarning)]
        return history, model, said

    same = _schedule_module(factor, step)
    reference, whole, _ = run(same, total, tmp_path / "whole")
    run(same, first, tmp_path / "same")
    resumed, model, said = run(_schedule_module(factor, step), total, tmp_path / "same")
    assert said == [], seeded.msg(said)
    assert resumed["lr"] == reference["lr"], seeded.msg(kind)
    for key, array in whole.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key], array, err_msg=seeded.msg(key))
    other = (
        _schedule_module(factor / 2, step)  # (1 - factor would be 0.5's own)
        if kind == "subclass"
        else _schedule_module(factor, step + 1)
    )
    run(same, first, tmp_path / "changed")
    _, _, said = run(other, total, tmp_path / "changed")
    what = (
        "the code of its class"
        if kind == "subclass"
        else r"the values of the globals its code reads \(STEP\)"
    )
    assert any(re.search(rf"schedule differs .* in {what}", text) for text in said), seeded.msg(
        said
    )
