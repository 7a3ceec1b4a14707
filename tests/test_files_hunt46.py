"""Files and interop round trips at random shapes (hunt 46).

Models, widths, dtypes and seeds are drawn fresh on each run (the seed is printed;
WXB_TEST_SEED=<seed> replays a failure).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import safetensors.numpy as stn
from safetensors import safe_open

import wxb
from wxb.errors import ConfigError, ModelFileError
from wxb.nn import (
    BatchNorm1d,
    CrossEntropyLoss,
    Dense,
    Dropout,
    LayerNorm,
    ReLU,
    Sequential,
    Tanh,
)


# ---------------------------------------------------------------------------------
# A Dropout(seed=…)'s own generator travels in the model file
# ---------------------------------------------------------------------------------
def _dropout_model(rng, dtype):
    """Dense layers of random widths (1 included), each maybe followed by a norm, an
    activation and a Dropout with a generator of its own: a fresh one, or the one an
    earlier Dropout holds (as wxb train's, all made from one seed)."""
    width = int(rng.integers(1, 6))
    n_features, layers, generators = width, [], []
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(1, 7))
        layers.append(Dense(width, out, seed=int(rng.integers(1 << 30))))
        if out > 1 and rng.random() < 0.3:
            layers.append(LayerNorm(out) if rng.random() < 0.5 else BatchNorm1d(out))
        layers.append(ReLU() if rng.random() < 0.5 else Tanh())
        if rng.random() < 0.8 or not generators:
            if generators and rng.random() < 0.4:
                seed = generators[int(rng.integers(len(generators)))]
            else:
                kind = [np.random.PCG64, np.random.MT19937, np.random.Philox][int(rng.integers(3))]
                seed = np.random.Generator(kind(int(rng.integers(1 << 30))))
                generators.append(seed)
            layers.append(Dropout(float(rng.uniform(0.1, 0.6)), seed=seed))
        width = out
    layers.append(Dense(width, 3, seed=int(rng.integers(1 << 30))))
    model = Sequential(*layers).to(dtype)
    for _ in range(int(rng.integers(0, 3))):  # a generator part-way through its draws
        generators[int(rng.integers(len(generators)))].random(int(rng.integers(1, 5)))
    return model, n_features


def _same_state(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a.values(), b.values(), strict=True))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_seeded_dropouts_generator_comes_back_with_the_model_file(tmp_path, seeded, dtype):
    """wxb.save kept a Dropout's p alone: the loaded Dropout drew its masks from wxb's
    generator, so a model saved before training (or between stages), loaded and fit,
    trained otherwise than the model itself (weights off by 1e-2 after a few steps), and
    set_rng_state(get_rng_state(model), loaded), the README's checkpoint recipe, was
    refused ("the state's module generators (dropout1._own_rng) are not the model's
    (none)"). Now each generator's state (shared ones shared) and the key fit's masks
    take from it come back with the model."""
    rng = seeded.rng
    for trial in range(6):
        model, n = _dropout_model(rng, dtype)
        path = tmp_path / f"m{trial}.safetensors"
        wxb.save(model, path)
        loaded = wxb.load(path)
        twin = copy.deepcopy(model)  # the reference: the model itself, trained on
        held = wxb.get_rng_state(model)["modules"]
        assert wxb.get_rng_state(loaded)["modules"] == held, seeded.msg(f"{trial} generators")
        wxb.set_rng_state(wxb.get_rng_state(model), loaded)  # (refused before)
        kept = [id(m._own_rng) for m in model.modules() if isinstance(m, Dropout)]
        back = [id(m._own_rng) for m in loaded.modules() if isinstance(m, Dropout)]
        assert len(set(kept)) == len(set(back)), seeded.msg(f"{trial} sharing")

        rows = int(rng.choice([1, 3, 7, 20]))
        X = rng.normal(size=(rows * 2 + 3, n)).astype(dtype)  # odd; batches of ≥ 2 rows
        y = rng.integers(0, 3, size=len(X))
        fit_seed = int(rng.integers(1 << 30))
        for m in (twin, loaded):  # fit: masks keyed by each own generator's first draw
            wxb.fit(m, X, y, epochs=2, batch_size=rows + 2, seed=fit_seed, verbose=False)
        assert _same_state(twin.state_dict(), loaded.state_dict()), seeded.msg(f"{trial} fit")
        for m in (twin, loaded):  # a loop of one's own: masks drawn from the generators
            m.train()
            opt = wxb.optim.SGD(m.parameters(), lr=0.05)
            for _ in range(2):
                loss = CrossEntropyLoss()(m(X), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        assert _same_state(twin.state_dict(), loaded.state_dict()), seeded.msg(f"{trial} loop")


def _edited(tmp_path, source, edit):
    """The model file ``source`` with its metadata's dropout_generators replaced."""
    with safe_open(str(source), "np") as handle:
        metadata = dict(handle.metadata())
    del metadata["digest"]  # (a file made by hand: else refused as changed since wxb.save)
    tensors = stn.load_file(str(source))
    entries = json.loads(metadata["dropout_generators"])
    edit(entries)
    metadata["dropout_generators"] = json.dumps(entries)
    path = tmp_path / "edited.safetensors"
    stn.save_file(tensors, str(path), metadata=metadata)
    return path


def test_damaged_dropout_generators_are_refused_in_one_line(tmp_path, seeded):
    rng = seeded.rng
    seed = int(rng.integers(1 << 30))
    model = Sequential(
        Dense(3, 4), ReLU(), Dropout(0.2, seed=seed), Dense(4, 4), Dropout(0.3), Dense(4, 2)
    )
    model[4]._own_rng = model[2]._own_rng  # (the second shares the first's generator)
    model[4]._row_key = int(rng.integers(1 << 62))
    source = wxb.save(model, tmp_path / "m.safetensors")
    loaded = wxb.load(source)
    assert loaded[2]._own_rng is loaded[4]._own_rng
    assert (loaded[2]._row_key, loaded[4]._row_key) == (model[2]._row_key, model[4]._row_key)

    def rename(e):
        first = e.pop("dropout1")
        e.update({"dense1": first, "dropout2": e.pop("dropout2")})  # (in its place)

    def bad_state(e):
        e["dropout1"]["state"]["state"] = "x"

    def other_kind(e):
        e["dropout1"]["state"]["bit_generator"] = "os.system"

    def bad_key(e):
        e["dropout1"]["row_key"] = -1

    def shares_nothing(e):
        e["dropout2"]["same_as"] = "dropout9"

    for edit, says in [
        (rename, "'dense1' names no Dropout"),
        (bad_state, "'dropout1' is not a generator's state"),
        (other_kind, "'dropout1' is not a generator's state"),
        (bad_key, "'dropout1' is not a generator's state"),
        (shares_nothing, "'dropout2' shares a generator saved after it, or none"),
    ]:
        with pytest.raises(ModelFileError, match=says) as caught:
            wxb.load(_edited(tmp_path, source, edit))
        assert "\n" not in str(caught.value)

    class OwnBits(np.random.PCG64):
        pass

    odd = Sequential(Dense(2, 2), Dropout(0.5, seed=np.random.Generator(OwnBits(seed))))
    with pytest.raises(ConfigError, match="dropout1's generator is a OwnBits"):
        wxb.save(odd, tmp_path / "odd.safetensors")
    assert not (tmp_path / "odd.safetensors").exists()


# ---------------------------------------------------------------------------------
# A torch state in bfloat16 (or float8) loads as torch's load_state_dict loads it
# ---------------------------------------------------------------------------------
def _torch_pair(rng, dtype):
    """A random torch Sequential (widths from 1, norms, activations) with a few batches
    of running statistics, and the wxb Sequential of the same layers, fresh."""
    torch = pytest.importorskip("torch")
    tnn, wnn = torch.nn, wxb.nn
    width = int(rng.integers(1, 6))
    theirs, ours, inputs = [], [], width
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(1, 7))
        bias = bool(rng.random() < 0.7)
        theirs.append(tnn.Linear(inputs, out, bias=bias))
        ours.append(wnn.Linear(inputs, out, bias=bias))
        draw = rng.random()
        if draw < 0.3:
            theirs.append(tnn.BatchNorm1d(out))
            ours.append(wnn.BatchNorm1d(out))
        elif draw < 0.6 and out > 1:
            theirs.append(tnn.LayerNorm(out))
            ours.append(wnn.LayerNorm(out))
        kind = ["Tanh", "ReLU", "Sigmoid", "GELU"][int(rng.integers(4))]
        theirs.append(getattr(tnn, kind)())
        ours.append(getattr(wnn, kind)())
        inputs = out
    torch.manual_seed(int(rng.integers(1 << 62)))
    net = tnn.Sequential(*theirs).to(getattr(torch, dtype)).train()
    with torch.no_grad():
        for p in net.parameters():  # (norms' γ and β off 1 and 0)
            p.add_(torch.randn_like(p) * 0.5)
        for _ in range(int(rng.integers(1, 4))):
            net(torch.randn(int(rng.integers(2, 9)), width, dtype=net[0].weight.dtype))
    return net.eval(), wnn.Sequential(*ours).to(dtype), width


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_torch_state_in_bfloat16_loads_widened_as_torch_loads_it(tmp_path, seeded, dtype):
    """A bfloat16 checkpoint (safetensors.torch.save_file of a model cast with
    .bfloat16(), as many are published) was refused: "its torch.bfloat16 values cannot
    be read as a NumPy array", where torch's load_state_dict copies it into its float32
    model. Now each value is widened exactly, as torch's copy reads it (float8 too), and
    the model holds torch's numbers; assign=True, which would make the parameter
    bfloat16 in torch, is refused and loads nothing."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    rng = seeded.rng
    for trial in range(6):
        net, model, width = _torch_pair(rng, dtype)
        low = [torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2][int(rng.integers(3))]
        state = {k: v.to(low) if v.is_floating_point() else v for k, v in net.state_dict().items()}
        if trial % 2:  # through a file, as published
            save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "m.safetensors")
            state = load_file(tmp_path / "m.safetensors")
        else:  # in memory, a matrix non-contiguous (W.T of a (in, out) store)
            state = {k: v.T.contiguous().T if v.ndim == 2 else v for k, v in state.items()}
        before = {k: v.copy() for k, v in model.state_dict().items()}
        with pytest.raises(ConfigError, match=rf"assign=True\) would make this parameter {low}"):
            model.load_state_dict(state, assign=True)
        assert _same_state(model.state_dict(), before), seeded.msg(f"{trial} half-loaded")

        keys = model.load_state_dict(state)
        assert keys.missing_keys == [] and keys.unexpected_keys == [], seeded.msg(str(keys))
        net.load_state_dict(state)  # torch's own: the widened values in its dtype
        for (key, ours), theirs in zip(
            model.state_dict().items(), net.state_dict().values(), strict=True
        ):
            assert ours.dtype == theirs.numpy().dtype, seeded.msg(f"{trial} {key}")
            assert np.array_equal(ours, theirs.numpy()), seeded.msg(f"{trial} {key}")
        X = rng.normal(size=(int(rng.choice([1, 3, 8])), width)).astype(dtype)
        with torch.no_grad():
            expected = net(torch.from_numpy(X)).numpy()
        # the same weights, two libraries' roundings: float32 sums and a LayerNorm's x̂ (in
        # float64 in wxb, float32 in torch, off by ~ε·|x|/√(σ² + ε) ≤ 1e-4 with ε = 1e-5)
        tol = {"float32": 2e-4, "float64": 1e-11}[dtype]
        got = model.eval().predict(X)
        error = np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1), initial=0)
        assert error <= tol, seeded.msg(f"{trial}: off by {error:.3g}")


# ---------------------------------------------------------------------------------
# A Dense's init travels in the model file: reset_parameters() after load draws as before
# ---------------------------------------------------------------------------------
def test_reset_parameters_after_load_draws_the_layers_own_init(tmp_path, seeded):
    """A Dense made with init="he_normal" (or another) came back with the default, so
    reset_parameters() on the loaded model (re-initialising a head to fine-tune it)
    drew Glorot-uniform weights, of another spread, without a word. Now the file keeps
    each init that is not the default, and the loaded layer draws what the model's own
    draws from the same generator state."""
    from wxb.nn.layers import INITS

    rng = seeded.rng
    for trial in range(8):
        width, layers, inits = int(rng.integers(1, 6)), [], []
        for _ in range(int(rng.integers(1, 5))):
            out = int(rng.integers(1, 7))
            init = str(rng.choice(INITS))
            layers += [Dense(width, out, init=init, seed=int(rng.integers(1 << 30))), Tanh()]
            inits.append(init)
            width = out
        dtype = str(rng.choice(["float32", "float64"]))
        model = Sequential(*layers).to(dtype)
        loaded = wxb.load(wxb.save(model, tmp_path / f"m{trial}.safetensors"))
        ours = [m for m in loaded.modules() if isinstance(m, Dense)]
        assert [m.init for m in ours] == inits, seeded.msg(str(trial))
        seed = int(rng.integers(1 << 30))
        for m in (model, loaded):
            wxb.manual_seed(seed)
            for layer in m.modules():
                if isinstance(layer, Dense):
                    layer.reset_parameters()
        assert _same_state(model.state_dict(), loaded.state_dict()), seeded.msg(str(trial))

    model = Sequential(Dense(2, 3, init="he_uniform"), Dense(3, 1))
    source = wxb.save(model, tmp_path / "m.safetensors")
    assert json.loads(wxb.io.read_metadata(source)["dense_inits"]) == {"dense1": "he_uniform"}
    with safe_open(str(source), "np") as handle:
        metadata = dict(handle.metadata())
    del metadata["digest"]  # (a file made by hand: else refused as changed since wxb.save)
    for entries, says in [
        ({"dense1": "kaiming"}, "'dense1' is not a Dense layer's init"),
        ({"tanh1": "he_uniform"}, "'tanh1' is not a Dense layer's init"),
    ]:
        path = tmp_path / "edited.safetensors"
        stn.save_file(
            stn.load_file(str(source)), str(path), {**metadata, "dense_inits": json.dumps(entries)}
        )
        with pytest.raises(ModelFileError, match=says):
            wxb.load(path)
    model[0].init = "lecun"  # (set since: neither reset_parameters nor a file takes it)
    with pytest.raises(ConfigError, match="dense1's init 'lecun' is not one of"):
        wxb.save(model, tmp_path / "odd.safetensors")


def test_a_bfloat16_weights_file_given_to_load_names_the_reader_that_reads_it(tmp_path, seeded):
    """wxb.load of a plain safetensors file says how to load its weights instead; for a
    bfloat16 one it said safetensors.numpy.load_file, which fails on it ("data type
    'bfloat16' not understood"): it now names safetensors.torch.load_file, whose tensors
    load_state_dict takes, and the model then holds torch's numbers."""
    pytest.importorskip("torch")
    from safetensors.torch import load_file, save_file

    rng = seeded.rng
    net, model, _ = _torch_pair(rng, "float32")
    path = tmp_path / "weights.safetensors"
    save_file(
        {k: v.bfloat16() if v.is_floating_point() else v for k, v in net.state_dict().items()}, path
    )
    with pytest.raises(ModelFileError, match=r"safetensors\.torch\.load_file\(path\)\) \(NumPy"):
        wxb.load(path)
    model.load_state_dict(load_file(path))  # what the message says, taken
    net.load_state_dict(load_file(path))
    assert _same_state(model.state_dict(), {k: v.numpy() for k, v in net.state_dict().items()})
    save_file(net.state_dict(), path)  # float32: NumPy's reader, as before
    with pytest.raises(ModelFileError, match=r"safetensors\.numpy\.load_file\(path\)\)$"):
        wxb.load(path)
