"""Model files: exact round trips, atomic writes, refusal of foreign or corrupt files."""

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import wxb
from wxb.nn import GELU, Dense, Dropout, LeakyReLU, Sequential, Sigmoid, Standardize, Tanh


def random_model(rng, dtype):
    n, h1, h2, c = (int(v) for v in rng.integers(2, 12, size=4))
    model = Sequential(
        Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n), dtype=dtype),
        Dense(n, h1, seed=int(rng.integers(1 << 30)), dtype=dtype, name="hidden1"),
        LeakyReLU(0.2),
        Dropout(0.3),
        Dense(h1, h2, seed=int(rng.integers(1 << 30)), dtype=dtype),
        GELU("tanh"),
        Tanh(),
        Dense(h2, c, bias=False, dtype=dtype),
        Sigmoid(),
    )
    model.info = {"task": "classification", "classes": ["a", "b"], "feature_names": ["x"] * n}
    return model, n


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saved_model_reloads_to_identical_predictions(tmp_path, rng, dtype):
    model, n = random_model(rng, dtype)
    path = wxb.save(model, tmp_path / "model.safetensors")
    loaded = wxb.load(path)
    X = rng.normal(size=(17, n))
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.info == model.info
    assert [type(m) for m in loaded] == [type(m) for m in model]
    assert loaded.hidden1.in_features == n
    assert loaded[2].kernel.negative_slope == 0.2


def test_file_is_plain_safetensors_readable_by_the_safetensors_library(tmp_path, rng):
    model, _ = random_model(rng, "float32")
    path = wxb.save(model, tmp_path / "m.safetensors")
    tensors = load_file(path)
    assert set(tensors) == set(model.state_dict())
    assert np.array_equal(tensors["hidden1.weight"], model.hidden1.weight.data)
    length = struct.unpack("<Q", path.read_bytes()[:8])[0]
    metadata = json.loads(path.read_bytes()[8 : 8 + length])["__metadata__"]
    assert json.loads(metadata["architecture"])["type"] == "Sequential"


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path, rng):
    model, _ = random_model(rng, "float32")
    path = tmp_path / "m.safetensors"
    wxb.save(model, path)
    first = path.read_bytes()
    model.hidden1.weight.data += 1
    wxb.save(model, path)
    assert path.read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_a_failed_save_leaves_the_existing_file_intact(tmp_path, rng, monkeypatch):
    model, _ = random_model(rng, "float32")
    path = tmp_path / "m.safetensors"
    wxb.save(model, path)
    good = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        wxb.save(model, path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_unsaveable_module_is_a_config_error(tmp_path):
    class Custom(wxb.nn.Module):
        pass

    with pytest.raises(wxb.ConfigError, match="Custom cannot be saved"):
        wxb.save(Sequential(Dense(2, 2), Custom()), tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_saving_a_state_dict_alone_writes_it(tmp_path, rng):
    # torch.save(model.state_dict(), path) is a PyTorch habit; it was refused, with a hint
    # to save it with safetensors instead: now wxb.save writes it as safetensors.numpy's
    # save_file would name it, and wxb.load (or load_file) reads the dict back
    model, _ = random_model(rng, "float32")
    path = wxb.save(model.state_dict(), tmp_path / "state.safetensors")
    again = wxb.load(wxb.save(model, tmp_path / "model.safetensors"))
    for read in (wxb.load, load_file):
        for parameter in again.parameters():
            parameter.data[...] = 0
        again.load_state_dict(read(path))
        pairs = zip(model.parameters(), again.parameters(), strict=True)
        assert all(np.array_equal(a.data, b.data) for a, b in pairs)


def test_foreign_corrupt_and_missing_files_are_model_file_errors(tmp_path, rng):
    model, _ = random_model(rng, "float32")
    good = wxb.save(model, tmp_path / "good.safetensors").read_bytes()

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, foreign)
    with pytest.raises(wxb.ModelFileError, match="not a wxb model"):
        wxb.load(foreign)

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good[: len(good) - 10])
    with pytest.raises(wxb.ModelFileError, match="corrupt or truncated"):
        wxb.load(truncated)

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(rng.bytes(64))
    with pytest.raises(wxb.ModelFileError, match="not a safetensors file"):
        wxb.load(garbage)

    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(b"\x80\x04\x95" + rng.bytes(40))
    with pytest.raises(wxb.ModelFileError):
        wxb.load(pickled)

    with pytest.raises(wxb.ModelFileError, match="no such model file"):
        wxb.load(tmp_path / "absent.safetensors")


def test_weights_that_do_not_fit_the_architecture_are_refused(tmp_path, rng):
    model, _ = random_model(rng, "float32")
    path = wxb.save(model, tmp_path / "m.safetensors")
    tensors = load_file(path)
    length = struct.unpack("<Q", path.read_bytes()[:8])[0]
    metadata = json.loads(path.read_bytes()[8 : 8 + length])["__metadata__"]
    tensors["hidden1.weight"] = np.zeros((1, 1), np.float32)
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, bad, metadata=metadata)
    with pytest.raises(wxb.ModelFileError, match="do not fit"):
        wxb.load(bad)


def test_loading_does_not_advance_the_global_generator(tmp_path, rng):
    model, _ = random_model(rng, "float32")
    path = wxb.save(model, tmp_path / "m.safetensors")
    wxb.manual_seed(5)
    expected = Dense(3, 3).weight.data.copy()
    wxb.manual_seed(5)
    wxb.load(path)
    assert np.array_equal(Dense(3, 3).weight.data, expected)


def test_the_same_model_saved_in_two_processes_gives_the_same_bytes(tmp_path, rng):
    """A file's bytes follow from its contents alone (the safetensors library orders its
    metadata differently per process), so identical runs can be checked with sha256sum."""
    import subprocess
    import sys

    sizes = [int(s) for s in rng.integers(1, 9, size=3)]
    seed = int(rng.integers(1 << 30))
    script = (
        "import sys, wxb\n"
        "from wxb.nn import Dense, Sequential, Tanh\n"
        f"m = Sequential(Dense({sizes[0]}, {sizes[1]}, seed={seed}), Tanh(), "
        f"Dense({sizes[1]}, {sizes[2]}, seed={seed + 1}))\n"
        "m.info = {'task': 'regression', 'feature_names': list('abcdefgh'), 'target': 'y'}\n"
        "wxb.save(m, sys.argv[1])\n"
    )
    paths = [tmp_path / f"run{i}.safetensors" for i in range(3)]
    for path in paths:
        subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    first = paths[0].read_bytes()
    assert all(p.read_bytes() == first for p in paths[1:]), f"sizes {sizes}, seed {seed}"
    loaded = load_file(paths[0])  # and the library reads what we write
    model = wxb.load(paths[0])
    assert all(np.array_equal(loaded[k], v) for k, v in model.state_dict().items())


def test_frozen_parameters_load_frozen(tmp_path, rng):
    """requires_grad=False survives save and load (as with torch.save(model)): the loaded
    model trains what the saved one trains (a frozen layer came back trainable), tied
    parameters included."""
    width = int(rng.integers(3, 7))
    first, last = Dense(width, width), Dense(width, 3)
    model = Sequential(first, Tanh(), Dense(width, width), Tanh(), last)
    model[2].weight = first.weight  # tied
    params = model.parameters()
    for p in params:
        p.requires_grad = bool(rng.integers(0, 2))
    params[0].requires_grad, params[-1].requires_grad = False, True  # one of each at least
    loaded = wxb.load(wxb.save(model, tmp_path / "m.safetensors"))
    assert [p.requires_grad for p in loaded.parameters()] == [p.requires_grad for p in params]
    X, y = rng.normal(size=(40, width)).astype(np.float32), rng.integers(0, 3, 40)
    for m in (model, loaded):
        wxb.fit(m, X, y, epochs=2, seed=0, verbose=False)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_path_given_to_load_state_dict_or_a_weights_file_to_load_says_what_to_do(tmp_path):
    # Keras's load_weights(path) habit: the path was iterated as a state, and the
    # refusal listed its characters as "unexpected ['s', 'd', '.', …]"
    model = Sequential(Dense(2, 3))
    path = tmp_path / "sd.safetensors"
    save_file(model.state_dict(), path)
    for given in (str(path), path):
        with pytest.raises(wxb.ConfigError, match=r"load_file\(path\)") as caught:
            model.load_state_dict(given)
        assert "'s', 'd'" not in str(caught.value)
    # and wxb.load, handed that weights-only file, says how such a file goes in
    with pytest.raises(wxb.ModelFileError, match=r"load_state_dict\(safetensors.numpy.load_file"):
        wxb.load(path)
