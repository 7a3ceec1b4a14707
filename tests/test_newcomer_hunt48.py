"""A newcomer's walk as a PyTorch, a Keras and a scikit-learn user, where the earlier walks
did not go: a PyTorch evaluation loop asks a tensor for its device and moves and counts
its labels (labels.to(device), labels.size(0)), a set_seed() seeds CUDA unguarded, and
torch's names wxb lacks (torch.backends, F.binary_cross_entropy, …) met Python's bare
AttributeError; Keras's evaluate(return_dict=…) met a TypeError; and `wxb train` on a
spreadsheet's prices ('$344,838.73') pointed to --task regression, which refused them."""

from __future__ import annotations

import copy
import pickle
import re

import numpy as np
import pytest
import torch
from cli_run import FAST, run

import wxb
import wxb.nn as nn
import wxb.nn.functional as F
from wxb.errors import ConfigError


def _twins(rng: np.random.Generator, features: int, classes: int):
    """A wxb model and a torch one holding the same weights."""
    hidden = int(rng.integers(3, 9))
    twin = torch.nn.Sequential(
        torch.nn.Linear(features, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, classes)
    ).double()
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(torch.from_numpy(rng.normal(size=tuple(p.shape))))
    model = nn.Sequential(nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, classes))
    model.to("float64")
    model.load_state_dict({k: v.numpy() for k, v in twin.state_dict().items()})
    return model, twin


def _evaluation_loop(lib, model, X, y, batch: int):
    """The loop PyTorch's tutorials write, line for line; ``lib`` is torch or wxb."""
    device = next(iter(model.parameters())).device
    inputs_all, labels_all = lib.tensor(X, dtype=lib.float64), lib.tensor(y).long()
    correct = total = 0
    loss_sum = lib.zeros(1, dtype=lib.float64, device=inputs_all.device)
    model.eval()
    with lib.no_grad():
        for start in range(0, len(X), batch):
            inputs = inputs_all[start : start + batch].to(device)
            labels = labels_all[start : start + batch].to(device)
            outputs = model(inputs)
            _, predicted = lib.max(outputs, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
            loss = torch.nn.functional.cross_entropy if lib is torch else F.cross_entropy
            loss_sum = loss_sum + loss(outputs, labels, reduction="sum")
            on_cpu = labels.cpu().numpy()
            assert isinstance(on_cpu, np.ndarray) and on_cpu.dtype == np.int64
    return correct, total, loss_sum.item() / total


def test_a_pytorch_evaluation_loop_runs_as_written_and_gives_torchs_figures(seeded):
    """`device = next(model.parameters()).device` stopped at "'Parameter' object has no
    attribute 'device'", and, past it, `labels.to(device)` at "'IndexArray' object has no
    attribute 'to'" and `total += labels.size(0)` at "'int' object is not callable":
    the labels wxb.tensor(y).long() gives are an int64 NumPy array. A tensor's device is
    now the CPU's, as torch's on the CPU, and the labels move (nowhere) and count."""
    rng = seeded.rng
    rows, features, classes = int(rng.integers(20, 80)), int(rng.integers(2, 6)), 3
    X, y = rng.normal(size=(rows, features)), rng.integers(0, classes, size=rows)
    model, twin = _twins(rng, features, classes)
    batch = int(rng.integers(3, 17))
    ours = _evaluation_loop(wxb, model, X, y, batch)
    theirs = _evaluation_loop(torch, twin, X, y, batch)
    assert ours[:2] == theirs[:2], seeded.msg(f"{ours} != {theirs}")
    assert abs(ours[2] - theirs[2]) <= 1e-12 * max(1.0, abs(theirs[2])), seeded.msg(
        f"{ours} != {theirs}"
    )
    p = model[0].weight
    assert p.device == "cpu" and str(p.device) == "cpu" and p.device.type == "cpu"
    assert p.is_cuda is False and model(X).device.type == "cpu"
    with pytest.raises(ConfigError, match="cuda"):  # the labels are refused a GPU, as tensors
        wxb.tensor(y).long().to("cuda")


@pytest.mark.parametrize(
    "to", ["float32", "float64", "long", "int32", "bool"], ids=lambda name: f"to({name})"
)
def test_labels_to_a_dtype_are_torchs_values_in_torchs_kind(seeded, to):
    """`labels.to(torch.float32)` (soft targets, a BCE's) gives a float tensor, as
    `labels.float()` does; an integer dtype integer labels; values as torch's."""
    y = seeded.rng.integers(-3, 4, size=int(seeded.rng.integers(1, 30)))
    torch_dtype = {"long": torch.int64, "bool": torch.bool}.get(to) or getattr(torch, to)
    theirs = torch.tensor(y).to(torch_dtype)
    for given in (torch_dtype, to, np.dtype({"long": "int64"}.get(to, to))):
        ours = wxb.tensor(y).long().to(given)
        values = ours.data if isinstance(ours, wxb.Tensor) else np.asarray(ours)
        assert isinstance(ours, wxb.Tensor) == theirs.is_floating_point(), seeded.msg(repr(ours))
        assert str(values.dtype) == str(theirs.dtype).removeprefix("torch."), seeded.msg(to)
        np.testing.assert_array_equal(values, theirs.numpy(), err_msg=seeded.msg(str(given)))
    labels = wxb.tensor(y).long()
    assert labels.to("cpu") is labels and labels.to(wxb.device("cpu"), torch_dtype).dtype


def test_a_set_seed_of_pytorchs_seeds_the_same_as_wxbs_manual_seed_alone(seeded):
    """`torch.cuda.manual_seed_all(seed)` in a ported set_seed() stopped at "'_Cuda' object
    has no attribute 'manual_seed_all'"; torch ignores it without a GPU, and so does wxb:
    the CPU's draws are the manual seed's, in torch and in wxb."""
    seed = int(seeded.rng.integers(0, 2**31))
    for lib in (torch, wxb):
        lib.manual_seed(seed)
        plain = lib.randn(5).numpy().copy()
        lib.manual_seed(seed)
        lib.cuda.manual_seed(seed + 1)
        lib.cuda.manual_seed_all(seed + 2)
        np.testing.assert_array_equal(lib.randn(5).numpy(), plain, err_msg=seeded.msg(str(lib)))


@pytest.mark.parametrize(
    ("module", "name", "way"),
    [
        (wxb, "backends", "same seed gives the same run"),
        (wxb, "set_num_threads", "OMP_NUM_THREADS"),
        (wxb, "seed", "wxb.manual_seed"),
        (wxb, "Generator", "np.random.default_rng"),
        (wxb, "FloatTensor", "wxb.tensor(data)"),
        (wxb, "LongTensor", ".long()"),
        (F, "ctc_loss", "binary_cross_entropy_with_logits"),
        (F, "conv2d", "flatten each image"),
        (F, "max_pool2d", "flatten each image"),
        (F, "avg_pool1d", "flatten each image"),
        (F, "gumbel_softmax", "x.relu() ** 2"),
        (F, "ctc_loss", "loss=f"),  # (poisson_nll_loss and gaussian_nll_loss are wxb's now)
    ],
    ids=lambda v: getattr(v, "__name__", v) if not isinstance(v, str) else v[:20],
)
def test_torchs_names_wxb_lacks_name_wxbs_way(module, name, way):
    """Each was Python's bare "module 'wxb' has no attribute 'backends'" (a set_seed()'s
    torch.backends.cudnn.deterministic = True), naming nothing to write instead; the names
    are torch's, and the ways named are wxb's."""
    torchs = torch if module is wxb else torch.nn.functional
    assert hasattr(torchs, name)  # a name a port really has
    with pytest.raises(AttributeError, match=rf"no attribute '{name}': .*{re.escape(way)}"):
        getattr(module, name)
    with pytest.raises(ImportError, match=re.escape(way)):
        exec(f"from {module.__name__} import {name}", {})
    for named in ("binary_cross_entropy_with_logits", "one_hot", "cross_entropy", "mse_loss"):
        assert callable(getattr(F, named))  # what the hints name is there
    with pytest.raises(
        AttributeError, match=r"^module 'wxb\.nn\.functional' has no attribute 'x'$"
    ):
        F.x  # noqa: B018


def test_the_activations_and_losses_a_functional_hint_lists_are_wxbs():
    """The hints list wxb.nn.functional's activations and losses: each there, callable."""
    for name, hint in (("gumbel_softmax", "activations are "), ("ctc_loss", "losses are ")):
        with pytest.raises(AttributeError) as caught:
            getattr(F, name)
        listed = str(caught.value).split(hint)[1].split(";")[0].replace(" and ", ", ")
        for named in listed.split(", "):
            assert callable(getattr(F, named)), named


def test_kerass_evaluate_return_dict_false_gives_kerass_list(seeded):
    """`wxb.evaluate(model, X, y, return_dict=True)`, as the README says it answers, was
    "unexpected keyword argument 'return_dict'"; False gives Keras's list, [loss,
    accuracy] (the loss alone for a loss without an accuracy), checked against torch's
    cross-entropy and the share of argmax hits."""
    rng = seeded.rng
    rows, features, classes = int(rng.integers(5, 60)), int(rng.integers(2, 6)), 4
    X, y = rng.normal(size=(rows, features)), rng.integers(0, classes, size=rows)
    model, twin = _twins(rng, features, classes)
    with torch.no_grad():
        out = twin(torch.from_numpy(X))
        loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(y)).item()
        accuracy = (out.argmax(1).numpy() == y).mean()
    as_list = wxb.evaluate(model, X, y, return_dict=False)
    assert isinstance(as_list, list) and len(as_list) == 2, seeded.msg(repr(as_list))
    np.testing.assert_allclose(as_list, [loss, accuracy], rtol=1e-12, err_msg=seeded.msg("list"))
    assert wxb.evaluate(model, X, y, return_dict=True) == wxb.evaluate(model, X, y)
    targets = rng.normal(size=(rows, classes))
    mse = wxb.evaluate(model, X, targets, loss="mse", return_dict=False)
    reference = 0.5 * ((out.numpy() - targets) ** 2).sum(axis=1).mean()  # wxb's ½‖ŷ − y‖²
    assert isinstance(mse, float) and abs(mse - reference) <= 1e-12 * max(1, reference)
    with pytest.raises(ConfigError, match="return_dict must be True or False; got 'no'"):
        wxb.evaluate(model, X, y, return_dict="no")


_WRITTEN = {  # how a spreadsheet writes a price, what the error must name, and its fix
    "currency": (lambda p: f'"${p:,.2f}"', "a currency or percent sign", "remove the signs"),
    "euro": (lambda p: f"{p:.2f} €", "a currency or percent sign", "remove the signs"),
    "grouped": (lambda p: f'"{p:,.2f}"', "thousands separators", "remove the separators"),
    "comma": (lambda p: f'"{p:.2f}"'.replace(".", ","), "a decimal comma", "decimal points"),
}


@pytest.mark.parametrize("written", sorted(_WRITTEN))
def test_a_target_of_numbers_written_as_text_is_named_as_such(tmp_path, capsys, seeded, written):
    """A price column written '$344,838.73' (a spreadsheet's export) stopped `wxb train`
    at "200 classes in 200 samples; is this a regression target? (use --task
    regression)", and --task regression at "target '$344,838.73' is not a number": two
    lines, neither naming the currency sign or the separators. Both now say how the
    numbers are written and what to do; done, the file trains as a regression on the
    very numbers."""
    capsys.readouterr()  # the seed's line
    rng = seeded.rng
    rows = int(rng.integers(30, 80))
    x = rng.normal(size=rows).round(3)
    price = (200_000 + 50_000 * x + rng.normal(size=rows) * 1_000).round(2)
    fmt, what, fix = _WRITTEN[written]
    messy = tmp_path / "houses.csv"
    messy.write_text(
        "x,price\n" + "".join(f"{a},{fmt(p)}\n" for a, p in zip(x, price, strict=True))
    )
    for task in ((), ("--task", "regression")):
        code, out, err = run(capsys, "train", "--data", messy, "--target", "price", *FAST, *task)
        assert code == 2 and out == "" and err.count("\n") == 1, seeded.msg(err)
        assert f"numbers written with {what}" in err or f"a number written with {what}" in err
        assert fix in err, seeded.msg(err)
    clean = tmp_path / "clean.csv"  # as the line says: the signs and separators removed
    clean.write_text("x,price\n" + "".join(f"{a},{p:.2f}\n" for a, p in zip(x, price, strict=True)))
    code, out, err = run(capsys, "train", "--data", clean, "--target", "price", *FAST)
    assert code == 0 and "task: regression" in out, seeded.msg(err)
    read = wxb.read_table(clean).columns["price"].values
    np.testing.assert_array_equal(read, price, err_msg=seeded.msg(written))


def test_labels_reshape_and_join_as_torchs_do(seeded):
    """A ported loop's label handling: `labels.view(-1)` stopped at NumPy's "Cannot
    interpret '-1' as a data type", `labels.unsqueeze(1).float()` (a BCE's targets) at
    "no attribute 'unsqueeze'", `labels.clone()`/`permute` likewise, and
    `torch.cat(all_preds)` of the batches' predicted classes gave a float32 Tensor where
    torch's stays int64. Each now gives torch's values and kind."""
    rng = seeded.rng
    rows = 2 * int(rng.integers(1, 20))
    y = rng.integers(0, 5, size=rows)
    ours, theirs = wxb.tensor(y).long(), torch.tensor(y)

    def same(a, b, what):
        assert isinstance(a, np.ndarray) and not isinstance(a, wxb.Tensor), seeded.msg(what)
        assert str(a.dtype) == str(b.dtype).removeprefix("torch."), seeded.msg(what)
        np.testing.assert_array_equal(a, b.numpy(), err_msg=seeded.msg(what))

    same(ours.view(-1), theirs.view(-1), "view(-1)")
    same(ours.view(2, -1), theirs.view(2, -1), "view(2, -1)")
    same(ours.view((-1, 1)), theirs.view((-1, 1)), "view((-1, 1))")
    for dim in (0, 1, -1):
        same(ours.unsqueeze(dim), theirs.unsqueeze(dim), f"unsqueeze({dim})")
    same(ours.view(2, -1).permute(1, 0), theirs.view(2, -1).permute(1, 0), "permute")
    cloned = ours.clone()
    cloned[0] += 1
    assert ours[0] == y[0], seeded.msg("clone shares its values")
    np.testing.assert_array_equal(ours.view(np.int32), y.view(np.int32))  # NumPy's view(dtype)
    # the count torch's size(0) also answers is NumPy's int, pickled and copied as one
    count = pickle.loads(pickle.dumps(ours.size))
    assert count == y.size == theirs.numel() and type(count) is int
    assert copy.deepcopy(ours.size) == y.size and ours.size(0) == theirs.size(0)
    # the batches' predicted classes, joined
    cut = int(rng.integers(1, rows))
    same(wxb.cat([ours[:cut], ours[cut:]]), torch.cat([theirs[:cut], theirs[cut:]]), "cat")
    same(wxb.cat([ours == 1, ours > 2]), torch.cat([theirs == 1, theirs > 2]), "cat of masks")
    halves = [ours[: rows // 2], ours[rows // 2 :]]
    for dim in (0, 1, -1):
        torch_halves = [theirs[: rows // 2], theirs[rows // 2 :]]
        same(wxb.stack(halves, dim=dim), torch.stack(torch_halves, dim=dim), f"stack {dim}")
    # .repeat is torch's (it tiles); np.repeat of the labels stays NumPy's (test_torch_names49)
    np.testing.assert_array_equal(ours.repeat(2), theirs.repeat(2).numpy())
    np.testing.assert_array_equal(np.repeat(ours, 2), np.repeat(y, 2))
    mixed = wxb.cat([ours.float(), wxb.tensor([0.5])])  # beside floats: a float tensor
    assert isinstance(mixed, wxb.Tensor) and mixed.dtype == np.float32


def test_text_labels_in_python_name_the_way_to_encode_them(seeded):
    """`wxb.fit(model, df, df["species"])` with text labels (a Keras or PyTorch user's
    DataFrame) said "(the CLI encodes string labels for you)": no way in Python. The line
    now names a label and the encoding; done as it says, the model trains, and the
    classes it names are scikit-learn's LabelEncoder's, each row's own label."""
    from sklearn.preprocessing import LabelEncoder

    rng = seeded.rng
    names = rng.choice(["setosa", "versicolor", "virginica", "x", "y"], size=3, replace=False)
    rows = int(rng.integers(20, 60))
    labels = rng.choice(names, size=rows)
    X = rng.normal(size=(rows, 3)) + (labels[:, None] == names[0]) * 4.0
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, len(set(labels))))
    for y in (labels, labels.astype(object), list(labels)):
        with pytest.raises(wxb.DataError) as caught:
            wxb.fit(model, X, y, epochs=1, verbose=0)
        message = str(caught.value)
        assert f"such as '{labels[0]}'" in message and "\n" not in message, seeded.msg(message)
    code = message.split("encode them, ")[1].split(" (then")[0]
    scope = {"np": np, "y": labels}
    exec(code, scope)
    classes, y = scope["classes"], scope["y"]
    np.testing.assert_array_equal(y, LabelEncoder().fit(labels).transform(labels))
    wxb.fit(model, X, y, epochs=2, verbose=0, seed=int(rng.integers(0, 2**31)))
    np.testing.assert_array_equal(classes[y], labels)
    named = classes[model.predict(X).argmax(1)]
    assert set(named) <= set(labels), seeded.msg(str(named))


@pytest.mark.parametrize("keyword", ["workers", "use_multiprocessing", "max_queue_size"])
def test_tf_keras_2s_loading_arguments_are_refused_naming_wxbs_way(seeded, keyword):
    """tf.keras 2's fit(..., workers=4, use_multiprocessing=True) met Python's bare
    "fit() got an unexpected keyword argument 'workers'", where the README says Keras's
    arguments wxb has not are refused naming its way; before any step (the weights as
    they were)."""
    rng = seeded.rng
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, size=20)
    model = nn.Sequential(nn.Linear(3, 2))
    before = model[0].weight.data.copy()
    # (not 10, tf.keras 2's default max_queue_size, which is taken: it asks for nothing)
    value = {"workers": 4, "use_multiprocessing": True, "max_queue_size": 20}[keyword]
    with pytest.raises(ConfigError, match=rf"^wxb\.fit takes no {keyword}= \(Keras's\): .*mpiexec"):
        wxb.fit(model, X, y, epochs=1, verbose=0, **{keyword: value})
    np.testing.assert_array_equal(model[0].weight.data, before)


def test_a_checkpoint_holding_a_count_of_labels_saves_it_as_the_int(tmp_path, seeded):
    """A ported loop's checkpoint, as PyTorch's tutorial writes it, with the samples seen
    (`total += labels.size(0)`, or `labels.size` kept whole): the count, callable as
    torch's size() since 568a733, was refused by wxb.save as "a function"; it saves and
    loads as NumPy's int count."""
    y = seeded.rng.integers(0, 3, size=int(seeded.rng.integers(1, 50)))
    labels = wxb.tensor(y).long()
    model = nn.Sequential(nn.Linear(2, 3))
    path = tmp_path / "ckpt.safetensors"
    wxb.save({"model": model.state_dict(), "seen": labels.size, "first": labels.size(0)}, path)
    back = wxb.load(path)
    assert back["seen"] == back["first"] == np.asarray(y).size == torch.tensor(y).numel()
    assert type(back["seen"]) is int, seeded.msg(repr(back["seen"]))
