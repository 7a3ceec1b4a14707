"""Small PyTorch-parity leftovers: parameter groups with and without names mixed, and
a loop with a Dropout(seed=…) resumed from a checkpoint."""

import itertools

import numpy as np
import pytest

import wxb
from wxb.errors import ConfigError

torch = pytest.importorskip("torch")


def _seed():
    return int(np.random.SeedSequence().entropy % 2**32)


def _nets(rng):
    """The same random stack of Linear layers in wxb and in PyTorch."""
    sizes = [int(n) for n in rng.integers(1, 6, size=int(rng.integers(3, 5)))]
    pairs = list(itertools.pairwise(sizes))
    ours = wxb.nn.Sequential(*[wxb.nn.Linear(a, b) for a, b in pairs])
    theirs = torch.nn.Sequential(*[torch.nn.Linear(a, b) for a, b in pairs])
    return ours, theirs


@pytest.mark.parametrize("named_first", [True, False])
@pytest.mark.parametrize("how", ["add_param_group", "constructor"])
@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_groups_with_and_without_names_are_refused_as_pytorch(named_first, how, kind):
    seed = _seed()
    rng = np.random.default_rng(seed)
    outcome = {}
    for lib, net in zip((wxb, torch), _nets(rng), strict=True):
        params = list(net.named_parameters())
        cut = int(rng.integers(1, len(params))) if lib is wxb else outcome["cut"]
        outcome["cut"] = cut
        first = params[:cut] if named_first else [p for _, p in params[:cut]]
        second = [p for _, p in params[cut:]] if named_first else params[cut:]
        make = getattr(lib.optim, kind)
        try:
            if how == "constructor":
                make([{"params": first}, {"params": second}], lr=0.01)
            else:
                make(first, lr=0.01).add_param_group({"params": second})
        except (ValueError, ConfigError) as error:
            outcome[lib.__name__] = error
        else:
            outcome[lib.__name__] = None
    assert isinstance(outcome["torch"], ValueError), f"seed {seed}: {outcome}"
    error = outcome["wxb"]
    assert isinstance(error, ConfigError), f"seed {seed}: wxb took the mixed groups"
    message = str(error)
    assert "\n" not in message and f"{kind} param_groups[1]" in message, message
    assert ("with names" if not named_first else "without names") in message, message


def test_groups_all_named_or_all_plain_are_still_taken():
    seed = _seed()
    rng = np.random.default_rng(seed)
    ours, _ = _nets(rng)
    params = list(ours.named_parameters())
    cut = int(rng.integers(1, len(params)))
    named = wxb.optim.Adam(params[:cut], lr=0.01)
    named.add_param_group({"params": params[cut:], "lr": 0.1})
    assert [g.get("param_names") for g in named.param_groups] == [
        [n for n, _ in params[:cut]],
        [n for n, _ in params[cut:]],
    ], f"seed {seed}"
    plain = wxb.optim.Adam([p for _, p in params[:cut]], lr=0.01)
    plain.add_param_group({"params": [p for _, p in params[cut:]]})
    assert all("param_names" not in g for g in plain.param_groups), f"seed {seed}"


def _dropout_net(rng_seed, dtype):
    from wxb import nn

    return nn.Sequential(
        nn.Linear(5, 16, dtype=dtype),
        nn.ReLU(),
        nn.Dropout(0.4, seed=rng_seed),  # a generator of its own
        nn.Linear(16, 12, dtype=dtype),
        nn.Tanh(),
        nn.Dropout(0.3),  # draws from wxb's default generator
        nn.Linear(12, 3, dtype=dtype),
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_loop_with_a_seeded_dropout_resumes_bit_for_bit(tmp_path, dtype):
    """A hand-written loop resumed from ``wxb.save({"model": …, "optimizer": …, "rng":
    wxb.get_rng_state(model)})``: the Dropout(seed=…) of the rebuilt model started again
    from its seed (neither state_dict nor get_rng_state() held its generator), so the
    resumed run drew other masks than the uninterrupted one and ended elsewhere."""
    import wxb.nn.functional as F

    seed = _seed()
    rng = np.random.default_rng(seed)
    steps = int(rng.integers(4, 9))
    cut = int(rng.integers(1, steps))
    batches = [
        (wxb.tensor(rng.standard_normal((8, 5)).astype(dtype)), rng.integers(0, 3, 8))
        for _ in range(steps)
    ]
    dropout_seed = int(rng.integers(2**31))

    def make():
        model = _dropout_net(dropout_seed, dtype)
        return model, wxb.optim.Adam(model.parameters(), lr=0.01)

    def step(model, opt, X, y):
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        opt.step()

    path = tmp_path / "ckpt.safetensors"
    wxb.manual_seed(int(rng.integers(2**31)))
    model, opt = make()
    for i, (X, y) in enumerate(batches):
        step(model, opt, X, y)
        if i + 1 == cut:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict()}
            wxb.save({**state, "step": i + 1, "rng": wxb.get_rng_state(model)}, path)
    wxb.manual_seed(int(rng.integers(2**31)))  # a new process: another seed, new weights
    again, opt2 = make()
    ckpt = wxb.load(path)
    again.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    wxb.set_rng_state(ckpt["rng"], again)
    for X, y in batches[ckpt["step"] :]:
        step(again, opt2, X, y)
    for (name, p), q in zip(again.named_parameters(), model.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=f"seed {seed}: {name}")


def test_a_model_generators_state_is_refused_where_it_does_not_fit():
    from wxb import nn

    seed = _seed()
    rng = np.random.default_rng(seed)
    model = _dropout_net(int(rng.integers(2**31)), "float64")
    state = wxb.get_rng_state(model)
    with pytest.raises(ConfigError, match=r"pass the model too") as caught:
        wxb.set_rng_state(state)  # the model's generators would be left behind
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"this state lacks: save wxb\.get_rng_state\(model\)"):
        wxb.set_rng_state(wxb.get_rng_state(), model)
    other = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.2, seed=1), nn.Dropout(0.1, seed=2))
    before = [d._own_rng.bit_generator.state for d in other if isinstance(d, nn.Dropout)]
    with pytest.raises(ConfigError, match=r"are not the model's") as caught:
        wxb.set_rng_state(state, other)
    assert "\n" not in str(caught.value)
    after = [d._own_rng.bit_generator.state for d in other if isinstance(d, nn.Dropout)]
    assert after == before, f"seed {seed}: a refused state changed the generators"
    plain = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.2))  # no generator of its own
    wxb.set_rng_state(wxb.get_rng_state(plain), plain)
    wxb.set_rng_state(wxb.get_rng_state(), plain)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_gather_idiom_with_arange_is_refused_naming_the_fix_or_gives_torchs_loss(dtype):
    """``-logp[torch.arange(B), y].mean()`` written with wxb.arange, which is float32 (as
    README says): refused in one line that names arange and the way out (the refusal
    named Tensor() only), and with ``.long()`` it gives torch's loss and gradient."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    rows, classes = int(rng.integers(1, 9)), int(rng.integers(2, 6))
    z = rng.standard_normal((rows, classes)).astype(dtype)
    y = rng.integers(0, classes, rows)
    x = wxb.tensor(z, requires_grad=True)
    logp = x.log_softmax(1)
    for index in (wxb.arange(rows), y), (wxb.arange(rows), wxb.tensor(y)):
        with pytest.raises(wxb.DataError) as caught:
            logp[index]
        message = str(caught.value)
        assert "\n" not in message and "wxb.arange()" in message, message
        assert "idx.long()" in message and "np.arange(n)" in message, message
    with pytest.raises(wxb.DataError, match=r"wxb\.arange\(\).*write idx\.long\(\)"):
        logp.index_select(0, wxb.arange(rows))
    with pytest.raises(wxb.DataError, match=r"wxb\.arange\(\).*write idx\.long\(\)"):
        logp.gather(1, wxb.tensor(y).reshape(rows, 1))
    loss = -logp[wxb.arange(rows).long(), y].mean()
    loss.backward()
    t = torch.tensor(z, requires_grad=True)
    expected = -t.log_softmax(1)[torch.arange(rows), torch.tensor(y)].mean()
    expected.backward()
    tol = 1e-6 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=tol, err_msg=f"seed {seed}")
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=tol, atol=tol, err_msg=f"seed {seed}")
    # arange as a float tensor in arithmetic: torch's int64 · float gives the float's dtype
    w = rng.standard_normal(rows).astype(dtype)
    ours = wxb.arange(rows) * wxb.tensor(w)
    theirs = torch.arange(rows) * torch.tensor(w)
    assert ours.dtype == np.dtype(dtype), f"seed {seed}: {ours.dtype}"
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=tol, err_msg=f"seed {seed}")


def _as_torch_result(value):
    if isinstance(value, tuple):  # (values, indices)
        return tuple(_as_torch_result(v) for v in value)
    return np.asarray(value.detach().numpy() if hasattr(value, "detach") else value)


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin", "argmax", "argmin", "sum"])
def test_reductions_of_whole_numbers_are_exact_ints_as_torchs(name):
    """``wxb.max(labels).item()`` on an int64 array gave a float (5.0) where torch's and
    ``labels.max().item()`` give an int; and read as float32 a label above 2²⁴ was
    rounded (wxb.max of [16777217] gave 16777216.0), argmax chose between rounded ties."""
    from wxb.tensor import marks

    seed = _seed()
    rng = np.random.default_rng(seed)
    for _ in range(20):
        ndim = int(rng.integers(0, 4))
        shape = tuple(int(n) for n in rng.integers(1, 5, size=ndim))
        base = int(rng.choice([0, 2**24, 2**40]))
        labels = base + rng.integers(-3, 4, size=shape, dtype=np.int64)
        given = marks(labels) if rng.integers(2) else labels
        theirs_in = torch.from_numpy(np.array(labels))
        reduce_all = name in ("max", "min", "sum") or rng.integers(2)
        if reduce_all or ndim == 0:
            ours, theirs = getattr(wxb, name)(given), getattr(torch, name)(theirs_in)
            what = f"{name}(labels)"
            assert type(ours.item()) is type(theirs.item()) is int, f"seed {seed}: {what}"
            assert ours.item() == theirs.item(), f"seed {seed}: {what} {labels}"
            if name in ("max", "min"):
                assert ours.item() == getattr(labels, name)().item(), f"seed {seed}"
            continue
        dim = int(rng.integers(-ndim, ndim))
        keepdim = bool(rng.integers(2))
        what = f"{name}(labels, {dim}, keepdim={keepdim}) of {shape}"
        ours = getattr(wxb, name)(given, dim, keepdim)
        theirs = getattr(torch, name)(theirs_in, dim, keepdim)
        for a, b in zip(
            ours if isinstance(ours, tuple) else (ours,),
            theirs if isinstance(theirs, tuple) else (theirs,),
            strict=True,
        ):
            b = _as_torch_result(b)
            assert np.asarray(a).dtype == np.int64, f"seed {seed}: {what}"
            np.testing.assert_array_equal(a, b, err_msg=f"seed {seed}: {what}")
            assert np.shape(a) == b.shape, f"seed {seed}: {what}"
    floats = rng.standard_normal((3, 4)).astype(np.float32)  # floats: the Tensor form still
    ours = wxb.max(wxb.tensor(floats), 1)
    np.testing.assert_array_equal(ours.values.data, floats.max(1), err_msg=f"seed {seed}")
