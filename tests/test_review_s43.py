"""Review of session 43's merged changes: what a user reaches through them, checked
against PyTorch (and NumPy) on fresh draws."""

from __future__ import annotations

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")


def _seed() -> int:
    return int(np.random.SeedSequence().entropy % (2**32))


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
