"""Model files that cannot lie: save refuses what load would rebuild differently, tied
weights and named nested models round-trip, and a hand-edited file is refused with
ModelFileError before anything is allocated (never MemoryError or RecursionError).

The property test at the end generates models with hypothesis; a failure prints the
falsifying example and a ``@reproduce_failure`` blob to replay it.
"""

import itertools
import json
import math
import struct
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from safetensors.numpy import save as safetensors_bytes

import wxb
from wxb import ops
from wxb.io import STOCK_TYPES
from wxb.nn import (
    GELU,
    Activation,
    Dense,
    Dropout,
    Identity,
    LeakyReLU,
    Module,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Standardize,
    Tanh,
)

# ---------------------------------------------------------------------------------
# Modules a user might write
# ---------------------------------------------------------------------------------


class Residual(Sequential):
    """x + f(x): a subclass with its own forward."""

    def forward(self, x):
        return super().forward(x) + x


class MyDense(Dense):
    def forward(self, x):
        return super().forward(x) * 0.5


class SwishKernel:
    name = "swish"

    def forward(self, z, out):
        np.multiply(z, 1 / (1 + np.exp(-z)), out=out)
        return out

    def backward(self, z, a, grad, out):
        s = 1 / (1 + np.exp(-z))
        np.multiply(grad, s + z * s * (1 - s), out=out)
        return out


class Swish(Activation):
    """An activation of the user's own: a kernel of its own, Activation's forward."""

    def __init__(self, name=None):
        super().__init__(SwishKernel(), name)


class PlainTanh(Tanh):
    """A subclass that changes nothing is still not what load rebuilds."""


class MyDropout(Dropout):
    pass


class MyStandardize(Standardize):
    pass


class Scale(Module):
    """A custom module (not a Sequential): no config()."""

    def forward(self, x):
        return x * 3.0


ACTIVATION_CLASSES = (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, GELU, Softmax)


def where(path: str) -> str:
    return f"module '{path}'" if path else "the model itself"


def stock(module: Module) -> bool:
    return STOCK_TYPES.get(type(module).__name__) is type(module)


def tie_map(model: Module) -> dict[str, str]:
    """Each parameter slot holding a parameter seen earlier → its first name."""
    first, ties = {}, {}
    for path, module in model.named_modules(remove_duplicate=False):
        for key, param in module._parameters.items():
            name = f"{path}.{key}" if path else key
            if id(param) in first:
                ties[name] = first[id(param)]
            else:
                first[id(param)] = name
    return ties


def layout(model: Module) -> list[tuple[str, str, object]]:
    # every place (a module shared between places once per place: what files record)
    return [
        (path, type(m).__name__, m.name) for path, m in model.named_modules(remove_duplicate=False)
    ]


def repeats(model: Module) -> list[tuple[str, str]]:
    """(path, path of the earlier sibling it is the same object as) within each Sequential."""
    found = []
    for path, module in model.named_modules(remove_duplicate=False):
        seen = {}
        for key, child in module._modules.items():
            if id(child) in seen:
                found.append((f"{path}.{key}", seen[id(child)]))
            else:
                seen[id(child)] = key
    return found


def assert_round_trip(model: Module, path: Path, X: np.ndarray) -> Module:
    wxb.save(model, path)
    loaded = wxb.load(path)
    expected, got = model.predict(X), loaded.predict(X)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected, strict=True)
    assert loaded.dtype == model.dtype
    assert layout(loaded) == layout(model)
    assert tie_map(loaded) == tie_map(model)
    assert repeats(loaded) == repeats(model)
    for tied, target in tie_map(model).items():  # the same Parameter object, not a copy
        owner, _, key = tied.rpartition(".")
        source, _, source_key = target.rpartition(".")
        modules = dict(loaded.named_modules(remove_duplicate=False))
        assert modules[owner]._parameters[key] is modules[source]._parameters[source_key]
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for name, array in state.items():
        np.testing.assert_array_equal(loaded_state[name], array, strict=True)
    return loaded


def assert_refused(model: Module, folder: Path, rng, match: list[str]) -> wxb.ConfigError:
    """save raises ConfigError naming what is wrong, and writes nothing: a missing target
    stays missing, an existing file keeps its bytes, no temporary file is left."""
    absent, existing = folder / "absent.safetensors", folder / "existing.safetensors"
    old = rng.bytes(int(rng.integers(1, 200)))
    existing.write_bytes(old)
    before = sorted(p.name for p in folder.iterdir())
    for target in (absent, existing):
        with pytest.raises(wxb.ConfigError) as caught:
            wxb.save(model, target)
        for fragment in match:
            assert fragment in str(caught.value)
    assert not absent.exists()
    assert existing.read_bytes() == old
    assert sorted(p.name for p in folder.iterdir()) == before
    return caught.value


# ---------------------------------------------------------------------------------
# A. save refuses what load cannot rebuild exactly
# ---------------------------------------------------------------------------------
def _offender(kind: str, width: int, rng):
    if kind == "Residual":
        return Residual(Dense(width, width, seed=int(rng.integers(1 << 30))), Tanh())
    if kind == "MyDense":
        return MyDense(width, width, seed=int(rng.integers(1 << 30)))
    if kind == "Swish":
        return Swish()
    if kind == "PlainTanh":
        return PlainTanh()
    if kind == "MyDropout":
        return MyDropout(0.25)
    if kind == "MyStandardize":
        return MyStandardize(rng.normal(size=width), rng.uniform(0.5, 2, size=width))
    return Scale()


OFFENDERS = ["Residual", "MyDense", "Swish", "PlainTanh", "MyDropout", "MyStandardize", "Scale"]


@pytest.mark.parametrize("kind", OFFENDERS)
def test_save_refuses_subclasses_and_custom_modules_naming_path_and_class(tmp_path, rng, kind):
    width = int(rng.integers(2, 6))
    offender = _offender(kind, width, rng)
    inner = Sequential(ReLU(), offender, Dense(width, width))
    inner.name = "block"
    model = Sequential(Dense(width, width), inner, Dense(width, 2))
    X = rng.normal(size=(5, width))
    model.predict(X)  # a working model
    error = assert_refused(
        model, tmp_path, rng, [kind, f"'block.{offender.name}'", "cannot be saved", "state_dict"]
    )
    assert f"{Path(__file__).stem}.{kind}" in str(error)  # the class, with its module


@pytest.mark.parametrize("kind", ["Residual", "Scale"])
def test_save_refuses_a_model_whose_own_class_is_not_stock(tmp_path, rng, kind):
    model = Residual(Dense(3, 3), ReLU()) if kind == "Residual" else Scale()
    assert_refused(model, tmp_path, rng, [kind, "the model itself"])


def test_subclass_would_have_changed_predictions_silently(tmp_path, rng):
    """What the refusal prevents: the file would rebuild a plain Dense, which computes
    something else than MyDense."""
    width = int(rng.integers(2, 6))
    model = Sequential(MyDense(width, 3, seed=int(rng.integers(1 << 30)), name="layer"))
    plain = Sequential(Dense(width, 3, name="layer"))
    plain.load_state_dict(model.state_dict())
    X = rng.normal(size=(4, width))
    assert not np.array_equal(plain.predict(X), model.predict(X))
    assert_refused(model, tmp_path, rng, ["MyDense", "subclasses Dense"])


@pytest.mark.parametrize("kind", OFFENDERS[1:-1])
def test_config_of_a_subclassed_layer_refuses(rng, kind):
    offender = _offender(kind, int(rng.integers(2, 5)), rng)
    with pytest.raises(wxb.ConfigError, match=f"{kind} cannot be saved"):
        offender.config()


def test_weights_alone_still_save_and_load_for_a_custom_model(tmp_path, rng):
    """The way the refusal message points to: state_dict through safetensors."""
    from safetensors.numpy import load_file, save_file

    width = int(rng.integers(2, 6))
    model = Sequential(MyDense(width, width, seed=int(rng.integers(1 << 30))), Swish())
    save_file(model.state_dict(), tmp_path / "w.safetensors")
    again = Sequential(MyDense(width, width), Swish())
    again.load_state_dict(load_file(tmp_path / "w.safetensors"))
    X = rng.normal(size=(3, width))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_save_refuses_changes_load_would_lose(tmp_path, rng):
    width = int(rng.integers(2, 6))

    def fresh():
        return Sequential(Dense(width, width), ReLU(), Dense(width, 2))

    model = fresh()
    model.dense1.forward = lambda x: x  # an instance-level forward
    assert_refused(model, tmp_path, rng, ["'dense1'", "forward"])

    model = fresh()
    model.relu1.kernel = ops.Tanh()
    assert_refused(model, tmp_path, rng, ["'relu1'", "kernel"])

    model = fresh()
    model.dense1.name = "renamed"
    assert_refused(model, tmp_path, rng, ["'dense1'", "renamed"])

    model = fresh()
    model.dense2.extra = wxb.nn.Parameter(np.zeros(3, np.float32))
    assert_refused(model, tmp_path, rng, ["'dense2'", "extra"])

    model = fresh()
    model.dense1.weight = wxb.nn.Parameter(np.zeros((width + 1, width), np.float32))
    assert_refused(model, tmp_path, rng, ["'dense2' takes", "the layer before gives"])

    model = fresh()
    model.dense2.double()
    assert_refused(model, tmp_path, rng, ["float32 and float64", "model.to"])

    model = fresh()
    model.info = {"when": object()}
    assert_refused(model, tmp_path, rng, ["model.info"])


def test_save_refuses_a_model_that_contains_itself(tmp_path, rng):
    model = Sequential(Dense(2, 2))
    inner = Sequential(ReLU())
    model.inner = inner
    inner.name = "inner"
    inner.loop = model
    assert_refused(model, tmp_path, rng, ["contains itself"])


# ---------------------------------------------------------------------------------
# B. tied weights, and a layer given twice
# ---------------------------------------------------------------------------------
def test_tied_weights_round_trip_sharing_the_same_parameter(tmp_path, rng):
    width = int(rng.integers(2, 7))
    dtype = str(rng.choice(["float32", "float64"]))
    count = int(rng.integers(3, 7))
    denses = [
        Dense(width, width, seed=int(rng.integers(1 << 30)), dtype=dtype) for _ in range(count)
    ]
    for d in denses:  # random values: a tie to the wrong parameter would show
        d.bias.data[:] = rng.normal(size=width)
    for i in range(1, count):  # each layer may take the weight or bias of an earlier one
        if rng.random() < 0.6:
            denses[i].weight = denses[int(rng.integers(i))].weight
        if rng.random() < 0.3:
            denses[i].bias = denses[int(rng.integers(i))].bias
    denses[2].weight = denses[0].weight  # at least one tie
    model = Sequential(*itertools.chain.from_iterable((d, Tanh()) for d in denses))
    X = rng.normal(size=(6, width))
    loaded = assert_round_trip(model, tmp_path / "tied.safetensors", X)
    assert loaded.dense3.weight is loaded.dense1.weight
    metadata = wxb.io.read_metadata(tmp_path / "tied.safetensors")
    assert json.loads(metadata["ties"]) == tie_map(model)


def test_an_untied_file_has_no_ties_and_an_old_file_still_loads(tmp_path, rng):
    """FORMAT_VERSION "1" as before: no "ties" key, and a Sequential config without
    "name" (as older wxb wrote it) loads."""
    width = int(rng.integers(2, 6))
    model = Sequential(Dense(width, 3, seed=int(rng.integers(1 << 30))), ReLU())
    path = wxb.save(model, tmp_path / "m.safetensors")
    metadata = wxb.io.read_metadata(path)
    assert "ties" not in metadata
    architecture = json.loads(metadata["architecture"])
    del architecture["name"]
    metadata["architecture"] = json.dumps(architecture)
    del metadata["digest"]  # (older wxb wrote none)
    old = tmp_path / "old.safetensors"
    old.write_bytes(safetensors_bytes(model.state_dict(), metadata=metadata))
    X = rng.normal(size=(4, width))
    np.testing.assert_array_equal(wxb.load(old).predict(X), model.predict(X))


def test_a_layer_given_twice_round_trips_as_the_same_layer(tmp_path, rng):
    width = int(rng.integers(2, 6))
    shared = Dense(width, width, seed=int(rng.integers(1 << 30)))
    block = Sequential(shared, Tanh(), shared)
    block.name = "block"
    scale = Standardize(rng.normal(size=width), rng.uniform(1, 2, size=width))
    model = Sequential(scale, block, Dense(width, width), block, Dense(width, 2))
    loaded = assert_round_trip(model, tmp_path / "twice.safetensors", rng.normal(size=(5, width)))
    assert loaded.block.dense1_2 is loaded.block.dense1
    assert loaded.block_3 is loaded.block


# ---------------------------------------------------------------------------------
# C. named nested Sequentials
# ---------------------------------------------------------------------------------
def test_named_nested_sequentials_round_trip(tmp_path, rng):
    width = int(rng.integers(2, 6))
    inner = Sequential(ReLU(), Dense(8, 3, seed=int(rng.integers(1 << 30))))
    inner.name = "block"
    innermost = Sequential(Dense(3, 3))
    innermost.name = "innermost"
    deeper = Sequential(Sigmoid(), innermost)
    deeper.name = "head"
    model = Sequential(Dense(width, 8), inner, deeper, Sequential(Tanh()))
    model.name = "net"
    loaded = assert_round_trip(model, tmp_path / "nested.safetensors", rng.normal(size=(4, width)))
    assert loaded.name == "net"
    assert [p for p, _ in loaded.named_modules()][-4:] == [
        "head.innermost",
        "head.innermost.dense1",
        "sequential1",
        "sequential1.tanh1",
    ]


def test_nesting_up_to_the_limit_saves_and_loads_beyond_it_is_refused(tmp_path, rng):
    width = int(rng.integers(2, 5))
    model = Dense(width, width)
    for _ in range(wxb.io.MAX_DEPTH):
        model = Sequential(model)
    X = rng.normal(size=(3, width))
    assert_round_trip(model, tmp_path / "deep.safetensors", X)
    assert_refused(Sequential(model), tmp_path, rng, ["nested more than"])


# ---------------------------------------------------------------------------------
# D. hand-edited files
# ---------------------------------------------------------------------------------
CODES = {"float32": "F32", "float64": "F64", "float16": "F16", "int64": "I64"}


def write_raw(path: Path, entries: dict, data: bytes, metadata: dict | None) -> Path:
    """A safetensors file from a header written by hand."""
    header = dict(entries)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def encode(tensors: dict[str, np.ndarray]) -> tuple[dict, bytes]:
    entries, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        raw = np.ascontiguousarray(array).tobytes()
        entries[name] = {
            "dtype": CODES[array.dtype.name],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    return entries, b"".join(chunks)


def good_parts(rng):
    """A saved model's architecture, tensors and metadata, to edit."""
    n, h, c = (int(v) for v in rng.choice(np.arange(2, 9), size=3, replace=False))
    head = Sequential(Dense(h, c, seed=int(rng.integers(1 << 30))))
    head.name = "head"
    model = Sequential(
        Standardize(rng.normal(size=n), rng.uniform(0.5, 2, size=n)),
        Dense(n, h, seed=int(rng.integers(1 << 30)), name="hidden"),
        LeakyReLU(0.1),
        Dropout(0.2),
        GELU("tanh"),
        head,
    )
    metadata = {
        "format": "wxb",
        "format_version": "1",
        "info": json.dumps({"task": "classification"}),
        "dtype": "float32",
    }
    return model.config(), model.state_dict(), metadata


def craft(path, architecture, tensors, metadata, ties=None) -> Path:
    metadata = {key: value for key, value in metadata.items() if key != "digest"}  # (made by hand)
    if architecture is not None:
        metadata["architecture"] = json.dumps(architecture)
    if ties is not None:
        metadata["ties"] = ties if isinstance(ties, str) else json.dumps(ties)
    entries, data = encode(tensors)
    return write_raw(path, entries, data, metadata)


def refused(path: Path, *fragments: str) -> str:
    with pytest.raises(wxb.ModelFileError) as caught:
        wxb.load(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_the_good_parts_load(tmp_path, rng):
    architecture, tensors, metadata = good_parts(rng)
    wxb.load(craft(tmp_path / "good.safetensors", architecture, tensors, metadata))


def _set(path_in_json, value):
    def edit(architecture, tensors):
        node = architecture
        for key in path_in_json[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path_in_json[-1]]
        else:
            node[path_in_json[-1]] = value

    return edit


_DELETE = object()
HIDDEN = ("layers", 1)  # the Dense named hidden
ARCHITECTURE_EDITS = {
    "in_features negative": (_set((*HIDDEN, "in_features"), -3), "in_features -3"),
    "in_features zero": (_set((*HIDDEN, "in_features"), 0), "in_features 0"),
    "in_features text": (_set((*HIDDEN, "in_features"), "4"), "in_features '4'"),
    "in_features float": (_set((*HIDDEN, "in_features"), 4.0), "in_features 4.0"),
    "in_features bool": (_set((*HIDDEN, "in_features"), True), "in_features True"),
    "in_features huge": (_set((*HIDDEN, "in_features"), 10**40), "do not fit"),
    "out_features missing": (_set((*HIDDEN, "out_features"), _DELETE), "without out_features"),
    "bias text": (_set((*HIDDEN, "bias"), "yes"), "bias 'yes'"),
    "unknown field": (_set((*HIDDEN, "activation"), "relu"), "unknown field"),
    "name with a dot": (_set((*HIDDEN, "name"), "a.b"), "'a.b' cannot name a layer"),
    "empty name": (_set((*HIDDEN, "name"), ""), "'' cannot name a layer"),
    "private name": (_set((*HIDDEN, "name"), "_parameters"), "cannot name a layer"),
    "attribute name": (_set((*HIDDEN, "name"), "forward"), "cannot name a layer"),
    "number name": (_set((*HIDDEN, "name"), 5), "5 cannot name a layer"),
    "root name number": (_set(("name",), 5), "name 5 is not text"),
    "duplicate names": (_set(("layers", 2, "name"), "hidden"), "named 'hidden'"),
    "negative_slope text": (_set(("layers", 2, "negative_slope"), "abc"), "negative_slope"),
    "negative_slope inf": (_set(("layers", 2, "negative_slope"), math.inf), "negative_slope"),
    "negative_slope huge int": (_set(("layers", 2, "negative_slope"), 10**400), "negative_slope"),
    "p one": (_set(("layers", 3, "p"), 1.0), "Dropout p 1.0"),
    "p negative": (_set(("layers", 3, "p"), -0.1), "Dropout p -0.1"),
    "p nan": (_set(("layers", 3, "p"), math.nan), "Dropout p nan"),
    "p text": (_set(("layers", 3, "p"), "0.5"), "Dropout p '0.5'"),
    "approximate": (_set(("layers", 4, "approximate"), "fast"), "approximate 'fast'"),
    "features": (_set(("layers", 0, "features"), -1), "features -1"),
    "unknown type": (_set(("layers", 4, "type"), "Conv2d"), "unknown layer type 'Conv2d'"),
    "no type": (_set(("layers", 4, "type"), _DELETE), "unknown layer type None"),
    "layer a number": (_set(("layers", 2), 1), "1 is not a layer description"),
    "layer text": (_set(("layers", 2), "relu"), "'relu' is not a layer description"),
    "layer null": (_set(("layers", 2), None), "None is not a layer description"),
    "layer a list": (_set(("layers", 5), []), "[] is not a layer description"),
    "layers a dict": (_set(("layers", 5, "layers"), {}), "layers is dict, not a list"),
    "layers missing": (_set(("layers",), _DELETE), "without layers"),
}


@pytest.mark.parametrize("edit", list(ARCHITECTURE_EDITS))
def test_hand_edited_architecture_is_a_model_file_error(tmp_path, rng, edit):
    architecture, tensors, metadata = good_parts(rng)
    change, fragment = ARCHITECTURE_EDITS[edit]
    change(architecture, tensors)
    refused(craft(tmp_path / "bad.safetensors", architecture, tensors, metadata), fragment)


@pytest.mark.parametrize(
    "architecture, fragment",
    [([], "[] is not a layer description"), ("Sequential", "is not a layer description")],
)
def test_architecture_that_is_not_an_object_is_refused(tmp_path, rng, architecture, fragment):
    _, tensors, metadata = good_parts(rng)
    refused(craft(tmp_path / "bad.safetensors", architecture, tensors, metadata), fragment)


def test_metadata_that_is_not_what_save_writes_is_refused(tmp_path, rng):
    architecture, tensors, metadata = good_parts(rng)
    entries, data = encode(tensors)
    good = {**metadata, "architecture": json.dumps(architecture)}
    for meta, fragment in [
        ({**good, "architecture": "{not json"}, "architecture in its metadata is not JSON"),
        ({k: v for k, v in good.items() if k != "architecture"}, "architecture in its metadata"),
        ({**good, "info": "[1,"}, "info in its metadata is not JSON"),
        ({**good, "architecture": "1" * 5000}, "not JSON"),
        ({**good, "dtype": 32}, "must be text"),
        ({**good, "format_version": "2"}, "format version '2'"),
        (["format", "wxb"], "not a wxb model"),
    ]:
        refused(write_raw(tmp_path / "bad.safetensors", entries, data, meta), fragment)


@pytest.mark.parametrize(
    "edit, fragment",
    [
        ("float16", "is 'F16'"),
        ("int64", "is I64, not F32 or F64"),  # (I64 is only BatchNorm1d's batch count)
        ("mixed", "mix F32 and F64"),
        ("extra", "'ghost.weight', which the architecture has no place for"),
        ("missing", "missing 'hidden.weight'"),
        ("shape", "'hidden.weight' has shape"),
    ],
)
def test_stored_tensors_that_do_not_fit_are_refused(tmp_path, rng, edit, fragment):
    architecture, tensors, metadata = good_parts(rng)
    if edit in ("float16", "int64"):
        name = str(rng.choice(sorted(tensors)))
        tensors[name] = tensors[name].astype(edit)
    elif edit == "mixed":
        tensors["hidden.weight"] = tensors["hidden.weight"].astype(np.float64)
    elif edit == "extra":
        tensors["ghost.weight"] = rng.normal(size=(2, 2)).astype(np.float32)
    elif edit == "missing":
        del tensors["hidden.weight"]
    else:
        tensors["hidden.weight"] = tensors["hidden.weight"].T.copy()
        if tensors["hidden.weight"].shape == tensors["hidden.weight"].T.shape:
            tensors["hidden.weight"] = tensors["hidden.weight"][:1]
    refused(craft(tmp_path / "bad.safetensors", architecture, tensors, metadata), fragment)


@pytest.mark.parametrize(
    "entry, fragment",
    [
        ({"dtype": "F32", "shape": [-1, 3], "data_offsets": [0, 12]}, "not a list of sizes"),
        ({"dtype": "F32", "shape": [2, "3"], "data_offsets": [0, 24]}, "not a list of sizes"),
        ({"dtype": "F32", "shape": [1] * 20, "data_offsets": [0, 4]}, "not a list of sizes"),
        ({"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 1 << 40]}, "truncated"),
        ({"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 8]}, "does not take"),
        ({"dtype": "F32", "shape": [2, 3], "data_offsets": [24]}, "data_offsets"),
        ({"dtype": "F32", "shape": [2, 3]}, "not described"),
        ({"dtype": ["F32"], "shape": [2, 3], "data_offsets": [0, 24]}, "['F32']"),
        ([1, 2, 3], "not described"),
    ],
)
def test_malformed_header_entries_are_refused(tmp_path, rng, entry, fragment):
    architecture, tensors, metadata = good_parts(rng)
    entries, data = encode(tensors)
    entries["hidden.weight"] = entry
    meta = {**metadata, "architecture": json.dumps(architecture)}
    refused(write_raw(tmp_path / "bad.safetensors", entries, data, meta), fragment)


def test_overlapping_or_gapped_tensor_data_is_refused(tmp_path, rng):
    architecture, tensors, metadata = good_parts(rng)
    entries, data = encode(tensors)
    meta = {**metadata, "architecture": json.dumps(architecture)}
    names = sorted(entries, key=lambda n: entries[n]["data_offsets"][0])
    second = entries[names[1]]
    size = second["data_offsets"][1] - second["data_offsets"][0]
    second["data_offsets"] = [0, size]  # on top of the first
    refused(write_raw(tmp_path / "overlap.safetensors", entries, data, meta), "corrupt")
    entries, data = encode(tensors)
    refused(write_raw(tmp_path / "gap.safetensors", entries, data + b"\0" * 8, meta), "corrupt")


def _peak_while_loading(path: Path) -> tuple[str, int]:
    tracemalloc.start()
    try:
        with pytest.raises(wxb.ModelFileError) as caught:
            wxb.load(path)
        return str(caught.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_huge_declared_shapes_are_refused_without_allocating(tmp_path, rng):
    architecture, tensors, metadata = good_parts(rng)
    huge = 10**6 + int(rng.integers(1000))
    architecture["layers"][1]["in_features"] = huge
    architecture["layers"][1]["out_features"] = huge
    meta = {**metadata, "architecture": json.dumps(architecture)}
    # the header declares the huge tensor too (its bytes would be 4 TB)
    entries, data = encode(tensors)
    entries["hidden.weight"] = {
        "dtype": "F32",
        "shape": [huge, huge],
        "data_offsets": [len(data), len(data) + 4 * huge * huge],
    }
    message, peak = _peak_while_loading(write_raw(tmp_path / "a.safetensors", entries, data, meta))
    assert "truncated" in message and peak < 50e6, (message, peak)
    # the header keeps the real (small) tensor: the architecture does not fit it
    entries, data = encode(tensors)
    message, peak = _peak_while_loading(write_raw(tmp_path / "b.safetensors", entries, data, meta))
    assert "do not fit" in message and peak < 50e6, (message, peak)


@pytest.mark.parametrize("depth", [wxb.io.MAX_DEPTH + 1, 3000])
def test_deep_nesting_is_refused_without_recursion_error(tmp_path, rng, depth):
    _, _, metadata = good_parts(rng)
    text = "".join(['{"type": "Sequential", "layers": ['] * depth) + '{"type": "ReLU"}'
    text += "]}" * depth
    path = write_raw(tmp_path / "deep.safetensors", {}, b"", {**metadata, "architecture": text})
    message, peak = _peak_while_loading(path)
    assert ("nested" in message) and peak < 50e6


def test_a_header_nested_too_deeply_is_refused(tmp_path):
    header = b"[" * 5000 + b"]" * 5000
    path = tmp_path / "deep_header.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(wxb.ModelFileError, match="not a safetensors file"):
        wxb.load(path)


def test_too_many_modules_are_refused(tmp_path, rng):
    _, _, metadata = good_parts(rng)
    count = wxb.io.MAX_MODULES + int(rng.integers(1, 100))
    text = '{"type": "Sequential", "layers": [' + ", ".join(['{"type": "ReLU"}'] * count) + "]}"
    path = write_raw(tmp_path / "wide.safetensors", {}, b"", {**metadata, "architecture": text})
    message, peak = _peak_while_loading(path)
    assert "more than 100,000 modules" in message and peak < 50e6


@pytest.mark.parametrize(
    "ties, fragment",
    [
        ({"hidden.weight": "nothing.weight"}, "no parameter 'nothing.weight'"),
        ({"nothing.weight": "hidden.weight"}, "no parameter 'nothing.weight'"),
        ({"head.dense1.weight": "hidden.weight"}, "differ"),
        ({"head.dense1.weight": "head.dense1.weight"}, "under its own name"),
        ({"head.dense1.weight": 3}, "not a parameter name"),
        (["hidden.weight"], "ties are list"),
        ("{oops", "ties in its metadata is not JSON"),
    ],
)
def test_bad_ties_are_refused(tmp_path, rng, ties, fragment):
    architecture, tensors, metadata = good_parts(rng)
    refused(craft(tmp_path / "t.safetensors", architecture, tensors, metadata, ties), fragment)


def test_ties_must_point_to_the_first_name_and_replace_the_stored_tensor(tmp_path, rng):
    width = int(rng.integers(2, 6))
    first, second = Dense(width, width), Dense(width, width)
    second.weight = first.weight
    model = Sequential(first, second)
    path = wxb.save(model, tmp_path / "m.safetensors")
    metadata = wxb.io.read_metadata(path)
    architecture = json.loads(metadata.pop("architecture"))
    del metadata["ties"]
    state = model.state_dict()
    backwards = {"dense1.weight": "dense2.weight"}
    refused(craft(tmp_path / "a.safetensors", architecture, state, metadata, backwards), "first")
    both = {**state, "dense2.weight": state["dense1.weight"]}
    ties = {"dense2.weight": "dense1.weight"}
    refused(craft(tmp_path / "b.safetensors", architecture, both, metadata, ties), "no place")
    refused(craft(tmp_path / "c.safetensors", architecture, state, metadata), "missing")
    wxb.load(craft(tmp_path / "d.safetensors", architecture, state, metadata, ties))


def test_a_repeated_name_must_describe_the_same_layer(tmp_path, rng):
    width = int(rng.integers(2, 6))
    shared = Dense(width, width, seed=int(rng.integers(1 << 30)))
    model = Sequential(shared, ReLU(), shared)
    path = wxb.save(model, tmp_path / "m.safetensors")
    metadata = wxb.io.read_metadata(path)
    architecture = json.loads(metadata.pop("architecture"))
    ties = json.loads(metadata.pop("ties"))
    state = model.state_dict()
    different = json.loads(json.dumps(architecture))
    different["layers"][2]["bias"] = False
    refused(craft(tmp_path / "a.safetensors", different, state, metadata, ties), "two different")
    refused(craft(tmp_path / "b.safetensors", architecture, state, metadata), "given twice")
    wxb.load(craft(tmp_path / "c.safetensors", architecture, state, metadata, ties))


def test_build_refuses_what_it_cannot_build():
    with pytest.raises(wxb.ConfigError, match="not a layer description"):
        wxb.io.build({"type": "Dense", "in_features": -1, "out_features": 2, "bias": True})
    with pytest.raises(wxb.ConfigError, match="unknown layer type"):
        wxb.io.build({"type": "Swish"})
    deep: dict = {"type": "ReLU"}
    for _ in range(3000):
        deep = {"type": "Sequential", "layers": [deep]}
    with pytest.raises(wxb.ConfigError, match="nested more than"):
        wxb.io.build(deep)


# ---------------------------------------------------------------------------------
# E. property: every model a user can build either round-trips exactly or is refused
# ---------------------------------------------------------------------------------
LEAVES = ("dense", "activation", "dropout", "standardize", "repeat", "share")
OWN = ("mydense", "swish", "plaintanh", "scale", "residual")


@st.composite
def user_models(draw):
    """A model built from wxb.nn as a user would, sometimes with modules of the user's own."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    weights = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    allow_own = draw(st.booleans())
    names = itertools.count()
    named_squares: list[Dense] = []  # explicitly named square Dense layers, to share

    def name():
        return draw(st.one_of(st.none(), st.just(f"n{next(names)}")))

    def dense(n_in, n_out, cls=Dense):
        layer = cls(
            n_in,
            n_out,
            bias=draw(st.booleans()),
            seed=int(weights.integers(1 << 30)),
            dtype=dtype,
            name=name(),
        )
        if layer.bias is not None:
            layer.bias.data[:] = weights.normal(size=n_out)
        if n_in == n_out and layer.name is not None:
            named_squares.append(layer)
        return layer

    def activation():
        cls = draw(st.sampled_from(ACTIVATION_CLASSES))
        if cls is LeakyReLU:
            slope = draw(st.floats(-3, 3, allow_nan=False, allow_infinity=False))
            return LeakyReLU(slope, name=name())
        if cls is GELU:
            return GELU(draw(st.sampled_from(["none", "tanh"])), name=name())
        return cls(name=name())

    def layers(width, depth):
        items = []
        kinds = LEAVES + (("sequential",) if depth < 3 else ()) + (OWN if allow_own else ())
        for _ in range(draw(st.integers(0 if depth else 1, 6))):
            kind = draw(st.sampled_from(kinds))
            if kind in ("dense", "mydense"):
                out = draw(st.one_of(st.just(width), st.integers(1, 5)))  # square: ties
                items.append(dense(width, out, MyDense if kind == "mydense" else Dense))
                width = out
            elif kind == "activation":
                items.append(activation())
            elif kind == "swish":
                items.append(Swish(name=name()))
            elif kind == "plaintanh":
                items.append(PlainTanh(name=name()))
            elif kind == "scale":
                items.append(Scale())
            elif kind == "dropout":
                items.append(Dropout(draw(st.floats(0, 0.9)), name=name()))
            elif kind == "standardize":
                items.append(
                    Standardize(
                        weights.normal(size=width),
                        weights.uniform(0.5, 2, size=width),
                        dtype=dtype,
                        name=name(),
                    )
                )
            elif kind == "repeat":  # the same layer twice in one Sequential
                layer = dense(width, width)
                items += [layer, activation(), layer]
            elif kind == "share":  # a named layer, again (here or in another Sequential)
                taken = {item.name for item in items}
                candidates = [d for d in named_squares if d.in_features == width]
                if candidates:
                    layer = draw(st.sampled_from(candidates))
                    if layer.name not in taken or any(layer is item for item in items):
                        items.append(layer)
            else:
                inner, width = layers(width, depth + 1)
                block = (Residual if kind == "residual" else Sequential)(*inner)
                block.name = name()
                items.append(block)
        return items, width

    width = draw(st.integers(1, 5))
    items, _ = layers(width, 0)
    root = draw(st.sampled_from([Sequential, Residual] if allow_own else [Sequential]))(*items)
    if draw(st.booleans()):
        root.name = f"n{next(names)}"
    denses = [m for _, m in root.named_modules() if isinstance(m, Dense)]
    for i, layer in enumerate(denses):  # tie weights and biases of same-shaped layers
        for earlier in denses[:i]:
            if earlier.weight.shape == layer.weight.shape and draw(st.booleans()):
                layer.weight = earlier.weight
                if earlier.bias is not None and layer.bias is not None and draw(st.booleans()):
                    layer.bias = earlier.bias
                break
    root.info = {"classes": draw(st.lists(st.text(max_size=3), max_size=3))}
    return root, width, dtype


@settings(
    max_examples=300,
    deadline=None,
    derandomize=False,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=user_models(), rows=st.integers(1, 9), data_seed=st.integers(0, 2**32 - 1))
def test_every_model_round_trips_exactly_or_save_refuses_it(case, rows, data_seed):
    model, width, dtype = case
    rng = np.random.default_rng(data_seed)
    X = rng.normal(size=(rows, width)).astype(dtype)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        offenders = [(path, m) for path, m in model.named_modules() if not stock(m)]
        note(f"model: {model!r}; ties: {tie_map(model)}; repeats: {repeats(model)}")
        if not offenders:
            event("round trip")
            event(f"ties: {min(len(tie_map(model)), 3)}")
            event(f"layers given twice: {min(len(repeats(model)), 2)}")
            event(f"modules: {min(len(layout(model)) // 5 * 5, 20)}+")
            assert_round_trip(model, folder / "model.safetensors", X)
            return
        path, module = offenders[0]  # the first one walking the model in order
        event(f"refused: {type(module).__name__}")
        assert_refused(model, folder, rng, [type(module).__name__, where(path)])


@pytest.mark.parametrize(
    "frozen", ['["nothing.weight"]', '"hidden.weight"', "[1]", "[[0]]", "{}", "not json"]
)
def test_a_frozen_list_naming_no_parameter_is_refused(tmp_path, rng, frozen):
    architecture, tensors, metadata = good_parts(rng)
    path = craft(
        tmp_path / "frozen.safetensors", architecture, tensors, {**metadata, "frozen": frozen}
    )
    refused(path, "frozen" if frozen != "not json" else "not JSON")


def test_info_keys_that_are_not_text_are_refused_not_merged(tmp_path, rng):
    # JSON turned {1: 'cat', '1': 'dog'} into {'1': 'dog'} and {0: 'a'} into {'0': 'a'}:
    # the loaded info differed from the saved one without a word
    model = wxb.nn.Sequential(wxb.nn.Dense(2, int(rng.integers(1, 4))))
    key = [int(rng.integers(0, 9)), True, 2.5, None][int(rng.integers(0, 4))]
    for info in ({key: "cat", str(key): "dog"}, {"nested": [{"ok": 1}, {key: "a"}]}):
        model.info = info
        path = tmp_path / "m.safetensors"
        with pytest.raises(wxb.ConfigError, match=r"key .* is not text"):
            wxb.save(model, path)
        assert not path.exists()
    model.info = {"classes": [0, 1], "nested": {"deep": [1, {"x": None}]}}
    assert wxb.load(wxb.save(model, tmp_path / "ok.safetensors")).info == model.info
