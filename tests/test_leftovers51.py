"""Leftovers noticed by earlier sessions (s51): why_not_planned of a Sequential subclass
agrees with fit's engine."""

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")


class _Doubled(wxb.nn.Sequential):
    def forward(self, x):
        return super().forward(x) * 2


class _CalledDoubled(wxb.nn.Sequential):
    def __call__(self, x):
        return super().__call__(x) * 2


class _Plain(wxb.nn.Sequential):
    """No code of its own: Sequential's forward runs it, planned."""


def _subclass_model(shape, n, h, c):
    layers = (wxb.nn.Linear(n, h), wxb.nn.Tanh(), wxb.nn.Linear(h, c))
    if shape == "own forward":
        return _Doubled(*layers), 2.0
    if shape == "own __call__":
        return _CalledDoubled(*layers), 2.0
    model = _Plain(*layers) if shape == "plain subclass" else wxb.nn.Sequential(*layers)
    if shape == "instance forward":
        model.forward = lambda x: wxb.nn.Sequential.forward(model, x) * 2
        return model, 2.0
    if shape == "model hook":
        model.register_forward_hook(lambda module, inputs, output: output * 2)
        return model, 2.0
    return model, 1.0


@pytest.mark.parametrize(
    "shape",
    ["own forward", "own __call__", "instance forward", "model hook", "plain subclass", "stock"],
)
def test_why_not_planned_of_a_sequential_subclass_agrees_with_fit(seeded, shape):
    """A Sequential subclass with a forward of its own (``super().forward(x) * 2``) was
    reported planned by ``why_not_planned()`` (None) while ``fit`` trained it through the
    graph, saying "S overrides forward…": the two reports disagreed. Both now give the
    same reason; a subclass without code of its own stays planned. Every call path gives
    the subclass's numbers, as torch's twin computes them."""
    rng = seeded.rng
    n, h, c = (int(v) for v in rng.integers(2, 7, size=3))
    model, factor = _subclass_model(shape, n, h, c)
    model.to("float64")
    twin = torch.nn.Sequential(torch.nn.Linear(n, h), torch.nn.Tanh(), torch.nn.Linear(h, c))
    twin.double()
    with torch.no_grad():
        for ours, theirs in zip(
            model.state_dict().values(), twin.state_dict().values(), strict=True
        ):
            theirs.copy_(torch.from_numpy(np.asarray(ours)))
    X = rng.normal(size=(int(rng.integers(1, 9)), n))
    msg = lambda what: seeded.msg(f"{what} of a {shape}")  # noqa: E731
    with torch.no_grad():
        expected = factor * twin(torch.from_numpy(X)).numpy()
    tol = dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.predict(X), expected, **tol, err_msg=msg("predict"))
    with wxb.no_grad():
        np.testing.assert_allclose(model(X).data, expected, **tol, err_msg=msg("no_grad"))
    np.testing.assert_allclose(model(X).data, expected, **tol, err_msg=msg("a call"))
    reason = model.why_not_planned()
    history = wxb.fit(model, X, rng.normal(size=(len(X), c)), loss="mse", epochs=1, verbose=0)
    assert history.engine == ("planned" if reason is None else "graph"), msg(reason)
    assert reason == history.engine_reason, msg(f"{reason!r} against {history.engine_reason!r}")
    assert (reason is None) is (shape in ("plain subclass", "stock")), msg(reason)

