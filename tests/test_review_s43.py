"""Review of session 43's merged changes: what a user reaches through them, checked
against PyTorch (and NumPy) on fresh draws."""

from __future__ import annotations

import numpy as np
import pytest
from rounding import affine_terms, rounding_atol

import wxb

torch = pytest.importorskip("torch")


def _seed() -> int:
    return int(np.random.SeedSequence().entropy % (2**32))


def _rounding(model: wxb.nn.Sequential, X: np.ndarray) -> float:
    """What Linear–Tanh–Linear's outputs may differ by from torch's order of the sums
    (tanh is 1-Lipschitz): an output near 0 is off by that, far above an rtol."""
    first, last = model[0], model[2]
    terms = affine_terms(X, first.weight.data.T, first.bias.data)
    terms = affine_terms(terms, last.weight.data.T, last.bias.data)
    return rounding_atol(terms, first.weight.shape[1] + last.weight.shape[1] + 4)


def _twins(d: int, outputs: int) -> tuple[wxb.nn.Sequential, torch.nn.Sequential]:
    model = wxb.nn.Sequential(wxb.nn.Linear(d, 5), wxb.nn.Tanh(), wxb.nn.Linear(5, outputs))
    model.to(np.float64)
    tmodel = torch.nn.Sequential(
        torch.nn.Linear(d, 5), torch.nn.Tanh(), torch.nn.Linear(5, outputs)
    ).double()
    with torch.no_grad():
        for (_, tp), value in zip(
            tmodel.named_parameters(), model.state_dict().values(), strict=True
        ):
            tp.copy_(torch.tensor(value))
    return model, tmodel


# -- fit's look at the output's shape without hooks: a hook that changes the width --------
@pytest.mark.parametrize("keep", [True, False])
def test_a_forward_hook_changing_the_outputs_width_trains_and_scores_as_pytorch(keep):
    """A hook averaging the model's 3 outputs into one (o.mean(1, keepdim) or o.mean(1)):
    the look at the shape without hooks read 3 outputs and refused y of one column
    ('y must have shape (samples, 3)'), a model that fit and evaluate took before."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(10, 30)), int(rng.integers(2, 5))
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    model, tmodel = _twins(d, 3)
    model.register_forward_hook(lambda m, i, o: o.mean(axis=1, keepdims=keep))
    tmodel.register_forward_hook(lambda m, i, o: o.mean(1, keepdim=keep))
    Xt, yt = torch.tensor(X), torch.tensor(y if not keep else y[:, None])
    with torch.no_grad():  # wxb's mse: ½ the squared error, a mean over the rows
        expected = 0.5 * ((tmodel(Xt) - yt) ** 2).mean().item()
    assert wxb.evaluate(model, X, y, loss="mse")["loss"] == pytest.approx(expected, rel=1e-9), seed
    wxb.fit(model, X, y, loss="mse", optimizer="sgd", lr=0.1, epochs=2, batch_size=n,
            shuffle=False, verbose=False)  # fmt: skip
    opt = torch.optim.SGD(tmodel.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        (0.5 * ((tmodel(Xt) - yt) ** 2).mean()).backward()
        opt.step()
    for (key, value), (_, tp) in zip(
        model.state_dict().items(), tmodel.named_parameters(), strict=True
    ):
        np.testing.assert_allclose(value, tp.detach().numpy(), rtol=1e-9, err_msg=f"{seed} {key}")


# -- F.dropout's call-site streams: lambdas outside any named function --------------------
_DROP_A = lambda h, on: wxb.nn.functional.dropout(h, 0.5, on)  # noqa: E731
_DROP_B = lambda h, on: wxb.nn.functional.dropout(h, 0.5, on)  # noqa: E731


class _ModuleLambdas(wxb.nn.Module):
    """Two lambdas of the module (and two of the class body), the first of each called
    in a branch: each mask drawn is recorded."""

    drop_c = lambda self, h: wxb.nn.functional.dropout(h, 0.5, self.training)  # noqa: E731
    drop_d = lambda self, h: wxb.nn.functional.dropout(h, 0.5, self.training)  # noqa: E731

    def __init__(self, d: int, take: bool) -> None:
        super().__init__()
        self.fc, self.take, self.seen = wxb.nn.Linear(d, 6), take, []

    def forward(self, x):
        h = self.fc(x) * 0 + 1
        a = _DROP_A(h, self.training) if self.take else h
        b = _DROP_B(h, self.training)
        c = self.drop_c(h) if self.take else h
        d = self.drop_d(h)
        if self.training:
            self.seen.append([t.data.copy() for t in (a, b, c, d)])
        return (a + b + c + d).sum(axis=1, keepdims=True)


def test_f_dropout_in_lambdas_of_a_module_or_class_body_draws_streams_of_their_own():
    """Lambdas outside a named function were each counted from their own first line (all
    'line 0' at one column): two of them shared one numbered stream, and a rank whose
    rows skipped the first drew the second's mask from the first's place."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(6, 20)), int(rng.integers(2, 5))
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    kw = dict(loss="mse", epochs=2, batch_size=n, shuffle=False, verbose=False, seed=seed % 1000)
    runs = {}
    for take in (True, False):
        model = _ModuleLambdas(d, take)
        wxb.fit(model, X, y, **kw)
        runs[take] = model.seen
    for step, (a, b, c, d_) in enumerate(runs[True]):
        assert not np.array_equal(a, b) and not np.array_equal(c, d_), (seed, step)
        # the first call skipped: the second's mask is the one it drew with the first
        assert np.array_equal(b, runs[False][step][1]), (seed, step)
        assert np.array_equal(d_, runs[False][step][3]), (seed, step)


# -- explain: a Dense whose pre-hook changes its input -----------------------------------
def test_explain_does_not_write_a_delta_equation_that_skips_a_pre_hook():
    """dense2's pre-hook scales its input by c: δ⁽¹⁾ (PyTorch's ∂L/∂Z⁽¹⁾) is
    c·(W⁽²⁾ᵀ·δ⁽²⁾) ⊙ tanh′(Z⁽¹⁾), but explain wrote '(W⁽²⁾ᵀ·δ⁽²⁾) ⊙ tanh′(Z⁽¹⁾)' beside it:
    the equation shown computes another number than the δ shown."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    n, h, rows = int(rng.integers(2, 5)), int(rng.integers(2, 6)), int(rng.integers(2, 6))
    c = float(rng.uniform(1.5, 3.0))
    model = wxb.nn.Sequential(wxb.nn.Dense(n, h), wxb.nn.Tanh(), wxb.nn.Dense(h, 2)).double()
    model[2].register_forward_pre_hook(lambda m, args: (args[0] * c,))
    X, y = rng.standard_normal((rows, n)), rng.standard_normal((rows, 2))
    walk = wxb.explain(model, X, y, loss="mse", sample_rows=None)
    W1, W2 = (torch.tensor(model[i].weight.data, requires_grad=True) for i in (0, 2))
    z1 = torch.tensor(X) @ W1.T + torch.tensor(model[0].bias.data)
    z1.retain_grad()
    z2 = (torch.tanh(z1) * c) @ W2.T + torch.tensor(model[2].bias.data)
    z2.retain_grad()
    (0.5 * ((z2 - torch.tensor(y)) ** 2).sum() / rows).backward()
    step = next(s for s in walk.steps if s.equation.startswith("δ⁽¹⁾"))
    np.testing.assert_allclose(step.value, z1.grad.numpy().T, rtol=1e-9, err_msg=str(seed))
    if step.equation.endswith("= (W⁽²⁾ᵀ·δ⁽²⁾) ⊙ tanh′(Z⁽¹⁾)"):  # then it must compute δ⁽¹⁾
        written = (W2.detach().numpy().T @ z2.grad.numpy().T) * (
            1 - np.tanh(z1.detach().numpy().T) ** 2
        )
        np.testing.assert_allclose(written, step.value, rtol=1e-9, err_msg=f"{seed} {step}")
    else:
        assert "dense2's forward pre-hooks" in step.equation, (seed, step.equation)


# -- load_state_dict of a torch Sequential's positions: a model of its first layers -------
def test_a_model_of_a_torch_sequentials_first_layers_loads_them_with_strict_false():
    """torch's idiom: the first layers of a trained Sequential, loaded with strict=False
    (its later layers unexpected). wxb took the positions only when every name fitted,
    so it loaded nothing, the weights left as drawn, where torch's loads the layers."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    d, h, k = (int(v) for v in rng.integers(2, 6, size=3))
    theirs = torch.nn.Sequential(
        torch.nn.Linear(d, h), torch.nn.Tanh(), torch.nn.Linear(h, k), torch.nn.ReLU(),
        torch.nn.Linear(k, 3),
    ).double()  # fmt: skip
    state = theirs.state_dict()
    first = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.Tanh(), torch.nn.Linear(h, k))
    first = first.double()
    expected_keys = first.load_state_dict(state, strict=False)
    ours = wxb.nn.Sequential(wxb.nn.Linear(d, h), wxb.nn.Tanh(), wxb.nn.Linear(h, k)).double()
    keys = ours.load_state_dict({n: v.numpy() for n, v in state.items()}, strict=False)
    assert keys.missing_keys == expected_keys.missing_keys, (seed, keys)
    assert keys.unexpected_keys == expected_keys.unexpected_keys, (seed, keys)
    x = rng.normal(size=(4, d))
    with torch.no_grad():
        expected = first(torch.tensor(x)).numpy()
    np.testing.assert_allclose(
        ours(x).data, expected, rtol=1e-12, atol=_rounding(ours, x), err_msg=str(seed)
    )


# -- predict and evaluate in chunks: a hook that changes the outputs ----------------------
def test_a_hook_changing_outputs_keeps_predict_and_evaluate_in_chunks():
    """A forward hook scaling the outputs (o·c) made the coupling look without hooks
    differ from the chunks (which ran with it): read as a forward coupling rows, every
    row then ran at once, again through the hook (a batch of all rows where batch_size
    bounds the memory a call takes). The values are PyTorch's either way."""
    seed = _seed()
    rng = np.random.default_rng(seed)
    n, d, batch = int(rng.integers(30, 60)), int(rng.integers(2, 5)), int(rng.integers(5, 12))
    c = float(rng.uniform(1.5, 3.0))
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    model, tmodel = _twins(d, 1)
    seen = []
    model.register_forward_hook(lambda m, i, o: (seen.append(len(o.data)), o * c)[1])
    tmodel.register_forward_hook(lambda m, i, o: o * c)
    with torch.no_grad():
        expected = tmodel(torch.tensor(X)).numpy()
    atol = c * _rounding(model, X)
    np.testing.assert_allclose(model.predict(X, batch_size=batch), expected, rtol=1e-9, atol=atol)
    assert max(seen) <= batch, (seed, seen)
    seen.clear()
    loss = wxb.evaluate(model, X, y, loss="mse", batch_size=batch)["loss"]
    assert loss == pytest.approx(0.5 * np.mean((expected[:, 0] - y) ** 2), rel=1e-9), seed
    assert max(seen) <= batch, (seed, seen)


# -- wxb report's learning-rate chart with several parameter groups ----------------------
def test_the_reports_learning_rate_chart_draws_each_parameter_groups_rate():
    """Groups at lr and lr/10 under StepLR: the page drew history['lr'] alone under
    'Learning rate', group 0's curve read as every group's (the note beside it was fixed
    for this in cb160d7, the chart not); each group's rates, as torch.optim's
    param_groups[i]['lr'] before each scheduler.step(), now has a chart of its own."""
    import json
    import re

    from wxb.reporting import report_html

    seed = _seed()
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(20, 3)), rng.normal(size=20)
    lr, gamma, epochs = float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.3, 0.8)), 3
    model = wxb.nn.Sequential(wxb.nn.Linear(3, 4), wxb.nn.Tanh(), wxb.nn.Linear(4, 1))
    groups = [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": lr / 10}]
    opt = wxb.optim.SGD(groups, lr=lr)
    history = wxb.fit(model, X, y, loss="mse", optimizer=opt, epochs=epochs, verbose=False,
                      lr_schedule=wxb.optim.StepLR(opt, step_size=1, gamma=gamma))  # fmt: skip
    tp = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    topt = torch.optim.SGD([{"params": [tp[0]]}, {"params": [tp[1]], "lr": lr / 10}], lr=lr)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size=1, gamma=gamma)
    expected: list[list[float]] = [[], []]
    for _ in range(epochs):
        for i, group in enumerate(topt.param_groups):
            expected[i].append(group["lr"])
        topt.step()
        tsched.step()
    page = report_html(model, history, floor=False)
    keys = re.findall(r"<svg class='chart curve' data-key='(lr[^']*)'", page)
    assert len(keys) == 2, (seed, keys)
    data = json.loads(re.search(r'"figures":\s*(\{.*?\})', page).group(1))
    for key, rates in zip(keys, expected, strict=True):
        np.testing.assert_allclose(data[key], rates, rtol=1e-12, err_msg=f"{seed} {key}")
