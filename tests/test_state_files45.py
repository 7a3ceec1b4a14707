"""Checkpoints of states, as ``torch.save`` / ``torch.load`` are used in a loop of one's
own, without pickle: ``wxb.save({"model": …, "optimizer": …, "scheduler": …, "epoch":
e, "rng": wxb.get_rng_state()}, path)`` and ``wxb.load(path)``. It was refused, with
advice to use pickle (whose load runs code). Draws are fresh on each run (the
``seeded`` fixture prints its seed; replay with ``WXB_TEST_SEED=<seed>``)."""

from __future__ import annotations

import collections
import json
import math
import pickle
import struct

import numpy as np
import pytest
from cli_run import run
from safetensors.numpy import load_file

import wxb
import wxb.nn.functional as F
from wxb import nn

DTYPES = [
    np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
    np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128,
]  # fmt: skip


# ---------------------------------------------------------------------------------
# Random structures: generated, saved, loaded, compared exactly
# ---------------------------------------------------------------------------------
def _random_array(rng, shape=None) -> np.ndarray:
    dtype = np.dtype(DTYPES[rng.integers(len(DTYPES))])
    if shape is None:
        shape = tuple(int(n) for n in rng.integers(0, 4, size=rng.integers(0, 4)))
    if dtype.kind == "b":
        return np.asarray(rng.random(shape) < 0.5)  # (a 0-d draw is a scalar: made an array)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.asarray(rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True))
    values = np.asarray(rng.normal(scale=10.0 ** rng.integers(-3, 4), size=shape))
    if dtype.kind == "c":
        values = values + 1j * rng.normal(size=shape)
    array = np.asarray(values.astype(dtype))
    if array.size and rng.random() < 0.3:  # NaN and ±inf held in arrays too
        flat = array.reshape(-1)
        flat[rng.integers(flat.size)] = rng.choice([np.nan, np.inf, -np.inf])
    if rng.random() < 0.2 and array.ndim == 2:  # a transposed view, not C-ordered
        array = array.T
    return array


def _random_scalar(rng) -> object:
    choice = rng.integers(9)
    if choice == 0:
        return None
    if choice == 1:
        return bool(rng.random() < 0.5)
    if choice == 2:
        return int(rng.integers(-(2**62), 2**62)) * int(rng.choice([1, 2**70]))
    if choice == 3:
        return float(rng.choice([rng.normal() * 1e10, np.nan, np.inf, -np.inf, -0.0, 1.0]))
    if choice == 4:
        letters = "aé€𝛿_ /[]'\"\\\n{}\u0000"
        return "".join(rng.choice(list(letters), size=rng.integers(0, 8)))
    if choice == 5:  # a NumPy scalar, its dtype kept
        return _random_array(rng, ())[()]
    if choice == 6:
        return np.str_("ß" * int(rng.integers(0, 3)))
    return _random_array(rng)


def _random_structure(rng, depth: int = 0, container: bool = False) -> object:
    if not container and (depth >= 4 or rng.random() < 0.35):
        return _random_scalar(rng)
    kind = rng.integers(3)
    items = [_random_structure(rng, depth + 1) for _ in range(rng.integers(0, 5))]
    if kind == 0:
        return items
    if kind == 1:
        return tuple(items)
    keys = [
        int(rng.integers(-5, 50)) if rng.random() < 0.4 else str(rng.integers(0, 50)) for _ in items
    ]
    return dict(zip(keys, items, strict=True))


def _same(a: object, b: object, where: str = "root") -> None:
    """Exactly equal: types of every container and scalar, dtypes, shapes, bits."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} came back as {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape}"
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), where
        assert b.flags.writeable, f"{where}: a loaded array is read-only"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} came back as {list(b)}"
        for key in a:
            _same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{index}]")
    elif isinstance(a, (float, np.floating, np.complexfloating)):
        x, y = complex(a), complex(b)
        for u, v in ((x.real, y.real), (x.imag, y.imag)):
            assert (math.isnan(u) and math.isnan(v)) or (
                u == v and math.copysign(1, u) == math.copysign(1, v)
            ), f"{where}: {a!r} came back as {b!r}"
    else:
        assert a == b, f"{where}: {a!r} came back as {b!r}"


def _arrays_by_place(value: object, names: tuple = ()) -> list[tuple[tuple, np.ndarray]]:
    if isinstance(value, np.ndarray):
        return [(names, value)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _arrays_by_place(v, (*names, k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _arrays_by_place(v, (*names, i))]
    return []


def test_random_structures_come_back_exactly(seeded, tmp_path):
    """Nested dicts (str and int keys), lists, tuples, arrays of every dtype a state
    holds (0-d and empty ones too, NaN and ±inf in them), NumPy scalars, big ints,
    unicode: back with every type, dtype and bit; the arrays are safetensors tensors
    other tools read, under their place in the structure."""
    rng = seeded.rng
    for trial in range(25):
        value = {"k": _random_structure(rng)} if trial % 2 else _random_structure(rng, 1, True)
        path = tmp_path / f"state{trial}.safetensors"
        assert wxb.save(value, path) == path
        back = wxb.load(path)
        _same(value, back, seeded.msg(f"trial {trial}"))
        # an independent reader: the safetensors library finds each array, one tensor each
        tensors = load_file(path)
        places = _arrays_by_place(value)
        assert len(tensors) == len(places), seeded.msg(f"trial {trial}")
        taken: set[str] = set()
        for names, array in places:
            name = place = "/".join(map(str, names))
            number = 1  # a place an earlier array's name took ({32: …, "32": …}): place#2, …
            while name in taken:
                number += 1
                name = f"{place}#{number}"
            taken.add(name)
            if array.dtype == np.complex128:  # (no safetensors dtype: F64 pairs)
                stored = tensors[name].view(np.complex128)[..., 0]
            else:
                stored = tensors[name]
            assert stored.dtype == array.dtype and np.array_equal(
                stored, array, equal_nan=array.dtype.kind in "fc"
            ), seeded.msg(f"trial {trial}: tensor {name!r}")
    array = _random_array(rng)  # torch.save(tensor, path): an array alone, one tensor
    _same(array, wxb.load(wxb.save(array, tmp_path / "one.safetensors")), seeded.msg("alone"))
    assert list(load_file(tmp_path / "one.safetensors")) == ["checkpoint"]


def test_what_save_writes_as_deep_as_it_goes_load_reads(seeded, tmp_path):
    """Containers nested as deep as wxb.save allows, a leaf of each kind at the bottom: an
    array, a NaN, a NumPy scalar were refused by wxb.load as "nested too deep" (the reader
    counted the leaf's tag as a container); one level more is refused by save itself."""
    from wxb.statefile import MAX_DEPTH

    rng = seeded.rng
    for leaf in (_random_array(rng), float("nan"), _random_array(rng, ())[()], "x"):
        value = leaf
        for _ in range(MAX_DEPTH):
            value = [value] if rng.random() < 0.5 else {int(rng.integers(9)): value}
        path = wxb.save(value, tmp_path / "deep.safetensors")
        _same(value, wxb.load(path), seeded.msg(f"leaf {leaf!r}"))
        with pytest.raises(wxb.ConfigError, match=f"nested more than {MAX_DEPTH} deep"):
            wxb.save([value], tmp_path / "deeper.safetensors")


def test_tensors_and_parameters_are_saved_as_their_arrays(seeded, tmp_path):
    """A Parameter or Tensor in a checkpoint (a list of model.parameters(), a loss kept)
    is written as its array and read back as a NumPy array of the same values."""
    rng = seeded.rng
    layer = nn.Linear(int(rng.integers(1, 5)), int(rng.integers(1, 5)), dtype="float64")
    kept = wxb.Tensor(rng.normal(size=(2, 3)).astype(np.float32))
    value = {"params": list(layer.parameters()), "kept": kept, "weight": layer.weight}
    back = wxb.load(wxb.save(value, tmp_path / "t.safetensors"))
    expected = {"params": [p.data for p in layer.parameters()], "kept": kept.data}
    _same({**expected, "weight": layer.weight.data}, back, seeded.msg("tensors"))


def test_a_state_dict_alone_is_a_plain_safetensors_file(seeded, tmp_path):
    """``torch.save(model.state_dict(), path)``: wxb.save of a state_dict was refused with
    a hint; now its tensors are named as the state_dict names them, so
    safetensors.numpy.load_file reads the same dict, and load_state_dict takes wxb.load's."""
    rng = seeded.rng
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.Linear(6, 2))
    model(rng.normal(size=(8, 4)).astype(np.float32))  # running statistics, a batch count
    state = model.state_dict()
    path = wxb.save(state, tmp_path / "weights.safetensors")
    for read in (wxb.load(path), load_file(path)):
        assert list(read) == list(state) or sorted(read) == sorted(state)
        for key, array in state.items():
            assert read[key].dtype == array.dtype and np.array_equal(read[key], array), key
    fresh = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.BatchNorm1d(6), nn.Linear(6, 2))
    fresh.load_state_dict(wxb.load(path))
    X = rng.normal(size=(5, 4)).astype(np.float32)
    model.eval(), fresh.eval()
    np.testing.assert_array_equal(fresh(X).data, model(X).data, err_msg=seeded.msg("predict"))


# ---------------------------------------------------------------------------------
# A loop of one's own, interrupted and resumed: bit for bit
# ---------------------------------------------------------------------------------
def _setup(dtype: str, seed: int):
    wxb.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(5, 16, dtype=dtype), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3, dtype=dtype)
    )
    opt = wxb.optim.Adam(model.parameters(), lr=0.02)
    # a function rebuilt in code on resume (a file runs no code), and a schedule after it
    sched = wxb.optim.LambdaLR(opt, lambda epoch: 0.9**epoch)
    return model, opt, sched


def _epoch(model, opt, sched, X, y, epoch: int, seed: int) -> list[float]:
    model.train()
    losses = []
    order = np.random.default_rng([seed, epoch]).permutation(len(X))
    for start in range(0, len(X), 8):
        rows = order[start : start + 8]
        opt.zero_grad()
        loss = F.cross_entropy(model(X[rows]), y[rows])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()
    return losses


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_hand_written_loop_resumes_bit_for_bit(seeded, tmp_path, dtype):
    """Adam, a LambdaLR and Dropout: saved after two epochs with wxb.save, loaded into
    freshly built objects (another generator state meanwhile) with wxb.load, the loop
    goes on to the uninterrupted run's losses and weights, bit for bit."""
    rng = seeded.rng
    seed = int(rng.integers(2**31))
    X = rng.normal(size=(40, 5)).astype(dtype)
    y = rng.integers(0, 3, size=40)

    model, opt, sched = _setup(dtype, seed)
    straight = [_epoch(model, opt, sched, X, y, e, seed) for e in range(4)]
    expected = model.state_dict()

    model, opt, sched = _setup(dtype, seed)
    first = [_epoch(model, opt, sched, X, y, e, seed) for e in range(2)]
    checkpoint = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": 2,
        "rng": wxb.get_rng_state(),
    }
    path = wxb.save(checkpoint, tmp_path / "ckpt.safetensors")
    del model, opt, sched, checkpoint

    model, opt, sched = _setup(dtype, seed + 1)  # a new process: other weights, other draws
    ckpt = wxb.load(path)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    wxb.set_rng_state(ckpt["rng"])
    rest = [_epoch(model, opt, sched, X, y, e, seed) for e in range(ckpt["epoch"], 4)]

    assert first + rest == straight, seeded.msg(f"{dtype} losses")
    for key, array in model.state_dict().items():
        assert array.dtype == expected[key].dtype, key
        np.testing.assert_array_equal(array, expected[key], err_msg=seeded.msg(key))

    # the check has teeth: without the generator's state, Dropout draws other masks
    model, opt, sched = _setup(dtype, seed + 1)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    assert _epoch(model, opt, sched, X, y, 2, seed) != straight[2], seeded.msg("no rng")


def test_every_optimiser_and_schedule_state_round_trips(seeded, tmp_path):
    """The states wxb's own optimisers and schedules give are all saveable, and load
    back into fresh ones (state_dict() equal after)."""
    rng = seeded.rng
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    X, y = rng.normal(size=(6, 3)).astype(np.float32), rng.integers(0, 2, size=6)
    makers = {
        "sgd": lambda ps: wxb.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        "adamw": lambda ps: wxb.optim.AdamW(ps, lr=0.01),
        "rmsprop": lambda ps: wxb.optim.RMSprop(ps, lr=0.01),
    }
    schedules = {  # one for each optimiser
        "plateau": lambda o: wxb.optim.ReduceLROnPlateau(o, patience=0),
        "onecycle": lambda o: wxb.optim.OneCycleLR(o, max_lr=0.1, total_steps=10),
        "warm": lambda o: wxb.optim.CosineAnnealingWarmRestarts(o, T_0=2),
    }
    for (oname, make), (sname, schedule) in zip(makers.items(), schedules.items(), strict=True):
        opt = make(model.parameters())
        sched = schedule(opt)
        for _ in range(2):
            opt.zero_grad()
            F.cross_entropy(model(X), y).backward()
            opt.step()
            sched.step(1.0) if sname == "plateau" else sched.step()
        state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}
        back = wxb.load(wxb.save(state, tmp_path / f"{oname}.safetensors"))
        _same(state, back, seeded.msg(f"{oname} {sname}"))
        again = make(model.parameters())
        again.load_state_dict(back["optimizer"])
        _same(opt.state_dict(), again.state_dict(), seeded.msg(oname))
        schedule(again).load_state_dict(back["scheduler"])


# ---------------------------------------------------------------------------------
# Refusals: what and where, before writing; a file at the path stays as it was
# ---------------------------------------------------------------------------------
class _Thing:
    pass


Point = collections.namedtuple("Point", "x y")


def _refused_values():
    torch = pytest.importorskip("torch")
    return [
        (lambda e: 0.5**e, "a function"),
        (print, "a function"),
        ({1, 2}, "a set"),
        (b"\x00", "a bytes value"),
        (_Thing(), "_Thing object"),
        (torch.zeros(2), "a torch Tensor"),
        (np.array(["a", "b"]), "an array of dtype <U1"),
        (np.array([object()]), "an array of dtype object"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "an array of dtype datetime64"),
        (np.ma.masked_array([1.0, 2.0], mask=[0, 1]), "a MaskedArray"),
        (np.longdouble(1) if np.dtype(np.longdouble).itemsize > 8 else np.bytes_(b"x"), "scalar"),
        (Point(1, 2), "a Point (tuple subclass)"),
        (nn.Linear(2, 2), "save its .state_dict()"),
        (np.random.default_rng(0), "rng.bit_generator.state"),
        (1 + 2j, "a complex value"),
    ]


def test_refusals_name_the_place_and_leave_the_file(seeded, tmp_path):
    rng = seeded.rng
    path = tmp_path / "ckpt.safetensors"
    wxb.save({"good": np.arange(3.0)}, path)
    before = path.read_bytes()
    for bad, what in _refused_values():
        # the value at a random place in a structure
        where, value = "checkpoint", bad
        keys = [str(rng.choice(["model", "scheduler"])), int(rng.integers(5)), "lr_lambdas"]
        inner = {keys[2]: [0.1, value]}
        value = {keys[0]: {keys[1]: inner}}
        where = f"checkpoint[{keys[0]!r}][{keys[1]}][{keys[2]!r}][1]"
        with pytest.raises(wxb.ConfigError) as caught:
            wxb.save(value, path)
        message = str(caught.value)
        assert message.startswith(f"wxb.save: {where}: "), seeded.msg(message)
        assert what in message and "\n" not in message and "pickle" not in message, message
        assert path.read_bytes() == before, seeded.msg(f"{what}: the file changed")
    for key, name in ((1.5, "float"), (True, "bool"), ((1, 2), "tuple"), (None, "NoneType")):
        with pytest.raises(wxb.ConfigError) as caught:
            wxb.save({"a": {key: 1}}, path)
        assert f"checkpoint['a'][{key!r}]: a dict key of type {name}" in str(caught.value)
    looped: list = [1]
    looped.append({"again": looped})
    with pytest.raises(wxb.ConfigError, match=r"checkpoint\['x'\]\[1\]\['again'\]: it contains"):
        wxb.save({"x": looped}, path)
    with pytest.raises(wxb.ConfigError, match=r"wxb\.save takes a wxb\.nn\.Module .* got int"):
        wxb.save(3, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]  # no temporary


# ---------------------------------------------------------------------------------
# Damaged and edited files: one clear line naming the file
# ---------------------------------------------------------------------------------
def _rewrite_header(source, target, edit) -> None:
    payload = source.read_bytes()
    (length,) = struct.unpack("<Q", payload[:8])
    header = json.loads(payload[8 : 8 + length])
    edit(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    target.write_bytes(struct.pack("<Q", len(text)) + text + payload[8 + length :])


def _edit_structure(change):
    def edit(header):
        structure = json.loads(header["__metadata__"]["structure"])
        change(structure)
        header["__metadata__"]["structure"] = json.dumps(structure)

    return edit


def _entries(structure):  # the root dict's [key, node] pairs
    return structure["dict"]


def test_damaged_or_edited_files_are_refused_in_one_line(seeded, tmp_path):
    rng = seeded.rng
    value = {
        "w": rng.normal(size=(3, 2)).astype(np.float32),
        "c": np.complex128(1 + 2j) * np.ones(2),
        "n": np.int8(5),
        "s": [1, 2],
    }
    good = wxb.save(value, tmp_path / "good.safetensors")
    data = good.read_bytes()

    def set_node(key, node):
        def change(structure):
            for pair in _entries(structure):
                if pair[0] == key:
                    pair[1] = node

        return change

    edits = {
        "version": (lambda h: h["__metadata__"].update(format_version="2"), "version '2'"),
        "no structure": (lambda h: h["__metadata__"].pop("structure"), "without its structure"),
        "not JSON": (lambda h: h["__metadata__"].update(structure="{"), "not JSON"),
        "missing tensor": (
            _edit_structure(set_node("w", {"array": "nope", "dtype": "float32"})),
            "'nope'",
        ),
        "unnamed tensor": (_edit_structure(set_node("w", None)), "does not name"),
        "named twice": (
            _edit_structure(set_node("s", {"array": "w", "dtype": "float32"})),
            "twice",
        ),
        "bad tag": (_edit_structure(set_node("s", {"set": [1]})), "no value wxb.save writes"),
        "not complex": (
            _edit_structure(set_node("w", {"array": "w", "dtype": "complex128"})),
            "says 'complex128'",
        ),
        "other dtype": (lambda h: h["w"].update(dtype="I32"), "I32 [3, 2], where its struct"),
        "odd dtype": (_edit_structure(set_node("w", {"array": "w", "dtype": "str"})), "'str'"),
        "scalar range": (_edit_structure(set_node("n", {"numpy": "int8", "value": 300})), "300"),
        "scalar type": (_edit_structure(set_node("n", {"numpy": "object", "value": 1})), "object"),
        "tensor dtype": (lambda h: h["w"].update(dtype="BF16"), "'BF16'"),
        "key type": (
            _edit_structure(lambda s: _entries(s).append([1.5, None])),
            "not [str or int key",
        ),
    }
    for name, (edit, words) in edits.items():
        edited = tmp_path / f"{name}.safetensors"
        _rewrite_header(good, edited, edit)
        with pytest.raises(wxb.ModelFileError) as caught:
            wxb.load(edited)
        message = str(caught.value)
        assert message.startswith(f"{edited}: "), (name, message)
        assert words in message[len(str(edited)) :], (name, message)
        assert "\n" not in message, message
    for cut in sorted({int(rng.integers(1, len(data))) for _ in range(6)} | {4, len(data) - 1}):
        truncated = tmp_path / "truncated.safetensors"
        truncated.write_bytes(data[:cut])
        with pytest.raises(wxb.ModelFileError) as caught:
            wxb.load(truncated)
        assert str(caught.value).startswith(str(truncated)), (cut, caught.value)
        assert "\n" not in str(caught.value)


def test_model_files_and_state_files_are_not_taken_for_one_another(seeded, tmp_path, capsys):
    rng = seeded.rng
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    model_path = wxb.save(model, tmp_path / "model.safetensors")
    state_path = wxb.save(model.state_dict(), tmp_path / "state.safetensors")
    assert isinstance(wxb.load(model_path), nn.Sequential)
    assert isinstance(wxb.load(state_path), dict)
    with pytest.raises(wxb.ModelFileError, match=r"a wxb checkpoint of states .* not a model"):
        wxb.io.load_model(state_path)
    # a model file claiming to be a state file, and the reverse: refused, not misread
    relabeled = tmp_path / "relabeled.safetensors"
    _rewrite_header(model_path, relabeled, lambda h: h["__metadata__"].update(format="wxb-state"))
    with pytest.raises(wxb.ModelFileError, match="without its structure"):
        wxb.load(relabeled)
    _rewrite_header(state_path, relabeled, lambda h: h["__metadata__"].update(format="wxb"))
    with pytest.raises(wxb.ModelFileError, match="architecture in its metadata is missing"):
        wxb.load(relabeled)
    # the command line: a state file where a model is needed, one line and status 2
    data = tmp_path / "data.csv"
    rows = rng.normal(size=(4, 3))
    data.write_text("a,b,c\n" + "\n".join(",".join(map(repr, row)) for row in rows) + "\n")
    for argv in (("predict", state_path, data), ("summary", state_path)):
        code, _, err = run(capsys, *argv)
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and "not a model" in err and str(state_path) in err, err
    # and a CSV output is not written over a checkpoint
    code, _, err = run(capsys, "predict", model_path, data, "-o", state_path)
    assert code == 2 and "checkpoint file" in err, err
    assert isinstance(wxb.load(state_path), dict)


def test_loading_runs_no_pickle(seeded, tmp_path, monkeypatch):
    value = {"a": seeded.rng.normal(size=3), "b": [1, (2.0, "x")], 3: None}
    path = wxb.save(value, tmp_path / "s.safetensors")

    def refused(*args, **kwargs):
        raise AssertionError("pickle used while loading")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refused)
    _same(value, wxb.load(path))
    model = nn.Sequential(nn.Linear(2, 2))
    wxb.load(wxb.save(model, tmp_path / "m.safetensors"))


def test_a_pytorch_or_pickle_file_is_named_as_one(seeded, tmp_path, capsys):
    """``torch.load(path)`` ported as ``wxb.load(path)`` on a file torch.save wrote (a zip
    of pickles, or the legacy pickle) was refused as "not a safetensors file (bad header
    length)", which did not say what the file is or what to do; wxb reads none."""
    torch = pytest.importorskip("torch")
    values = torch.from_numpy(seeded.rng.normal(size=3))
    written = {
        "zip.pt": lambda p: torch.save({"w": values}, p),
        "legacy.pt": lambda p: torch.save({"w": values}, p, _use_new_zipfile_serialization=False),
        "plain.pkl": lambda p: p.write_bytes(pickle.dumps({"w": values.numpy()}, protocol=2)),
    }
    for name, write in written.items():
        path = tmp_path / name
        write(path)
        with pytest.raises(wxb.ModelFileError, match=r"PyTorch .* or pickle file") as caught:
            wxb.load(path)
        assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
        code, _, err = run(capsys, "summary", path)
        assert code == 2 and "pickle file" in err and err.count("\n") == 1, err
    # a safetensors file whose header length begins as a pickle does (0x80, 2..5) is read
    for _ in range(3):
        target = int(seeded.rng.integers(2, 6)) * 256 + 0x80
        value = {"pad": "", "w": values.numpy()}
        path = tmp_path / "lookalike.safetensors"
        for _ in range(2):  # the header's length, padded to 8, set by the string's length
            wxb.save(value, path)
            length = int.from_bytes(path.read_bytes()[:8], "little")
            value["pad"] += "x" * max(0, target - length)
        assert path.read_bytes()[:2] == bytes([0x80, target >> 8])
        _same(value, wxb.load(path), seeded.msg("lookalike"))


def test_torch_loads_keywords_are_taken(seeded, tmp_path):
    """``torch.load(path, map_location="cpu", weights_only=True)`` ported as ``wxb.load``
    stopped at TypeError (unexpected keyword). The CPU and either weights_only load the
    same (wxb never unpickles); another device is refused, saying why."""
    torch = pytest.importorskip("torch")
    value = {"w": seeded.rng.normal(size=(2, 3)), "epoch": 4}
    path = wxb.save(value, tmp_path / "ckpt.safetensors")
    for keywords in (
        {"map_location": "cpu"},
        {"map_location": torch.device("cpu"), "weights_only": True},
        {"weights_only": False},
    ):
        _same(value, wxb.load(path, **keywords), seeded.msg(str(keywords)))
    model = nn.Sequential(nn.Linear(2, 2))
    assert isinstance(
        wxb.load(wxb.save(model, tmp_path / "m.safetensors"), map_location="cpu"), nn.Sequential
    )
    for device in ("cuda", torch.device("cuda:0"), {"cuda:0": "cpu"}):
        with pytest.raises(wxb.ConfigError, match=r"map_location=.*on the CPU"):
            wxb.load(path, map_location=device)
