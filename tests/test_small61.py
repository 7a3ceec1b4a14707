"""PyTorch and scikit-learn habits that failed: np.block of tensors, ParameterDict's dict
methods, from_sklearn of a Poisson MLPRegressor, and wxb.tensor(h) of a tensor that
requires grad (torch warns)."""

import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch

import wxb
from wxb import nn


def test_np_block_of_tensors_gives_numpys_block_of_their_values(seeded):
    """np.block([t, u]) failed inside NumPy ("+=: 'method' and 'method'": it reads
    .size, torch's method on a tensor); a tensor that requires grad is refused."""
    rng = seeded.rng
    rows, left, right = (int(n) for n in rng.integers(1, 5, size=3))
    A, B = rng.standard_normal((rows, left)), rng.standard_normal((rows, right))
    C = rng.standard_normal(left + right)
    t, u, v = wxb.tensor(A, dtype="float64"), wxb.tensor(B, dtype="float64"), wxb.tensor(C)
    for got, want in (
        (np.block([t, u]), np.block([A, B])),
        (
            np.block([[t, u], [v.reshape(1, -1)]]),
            np.block([[A, B], [C.reshape(1, -1).astype(np.float32)]]),
        ),
        (np.block([[t, B]]), np.block([[A, B]])),
    ):
        assert isinstance(got, np.ndarray), seeded.msg(type(got))
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=seeded.msg("np.block"))
    with pytest.raises(TypeError, match=r"np\.block on a wxb Tensor that requires grad.*detach"):
        np.block([[t], [wxb.tensor(A, requires_grad=True)]])


def test_parameter_dict_has_torchs_dict_methods(seeded):
    """setdefault, popitem, copy (the same Parameters), fromkeys (one Parameter shared),
    reversed and | |= did not exist; each as torch's on a twin."""
    values = seeded.rng.standard_normal(6)

    def run(lib, make):
        d = lib.ParameterDict(OrderedDict([("b", make(values[0])), ("a", make(values[1]))]))
        seen = []
        new = d.setdefault("c", make(values[2]))
        kept = d.setdefault("a", make(values[3]))
        seen.append((new is d["c"], kept is d["a"], float(kept.detach().sum()), list(d)))
        twin = d.copy()
        seen.append((type(twin).__name__, list(twin), all(twin[k] is d[k] for k in d)))
        key, value = d.popitem()
        seen.append((key, float(value.detach().sum()), list(d), list(twin)))
        shared = make(values[4])
        made = d.fromkeys(["x", "y"], shared)
        seen.append((list(made), made["x"] is shared and made["y"] is shared))
        seen.append((len(list(made.parameters())), list(reversed(d))))
        other = lib.ParameterDict(OrderedDict([("z", make(values[5])), ("a", shared)]))
        merged = d | other
        seen.append((list(merged), merged["a"] is shared, d["a"] is not shared))
        d |= other
        seen.append((list(d), d["a"] is shared))
        with pytest.raises(KeyError):
            lib.ParameterDict().popitem()
        return seen

    got = run(nn, lambda v: nn.Parameter(np.array([v])))
    want = run(torch.nn, lambda v: torch.nn.Parameter(torch.tensor([v], dtype=torch.float64)))
    assert got == want, seeded.msg(got)


def test_from_sklearn_converts_a_poisson_regressor_with_its_log_link(seeded):
    """from_sklearn refused MLPRegressor(loss="poisson") though to_wxb records the log
    link: exp of the model's output is scikit-learn's predict."""
    from sklearn.neural_network import MLPRegressor

    import wxb.interop as interop

    rng = seeded.rng
    X = rng.standard_normal((30, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0])).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (not converged in a few steps)
        est = MLPRegressor(
            hidden_layer_sizes=(4,),
            loss="poisson",
            max_iter=5,
            random_state=int(rng.integers(2**31)),
        ).fit(X, y)
    model = interop.from_sklearn(est)
    assert model.info["loss"] == "poisson" and model.info["link"] == "log", model.info
    predicted = np.exp(model(wxb.tensor(X, dtype="float64")).data.ravel())
    np.testing.assert_allclose(predicted, est.predict(X), rtol=1e-12, err_msg=seeded.msg("mean"))


def test_wxb_tensor_of_a_tensor_that_requires_grad_warns_as_torch():
    """torch.tensor(h) warns that it copies h (its graph cut there); wxb.tensor(h) did
    not. The warning names the caller's line; a detached tensor copies quietly."""
    h = wxb.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match=r"requires grad.*detach\(\)\.clone\(\)") as caught:
        copied = wxb.tensor(h)
    assert caught[0].filename == __file__
    assert not copied.requires_grad and copied.data.tolist() == [1.0, 2.0]
    with pytest.warns(UserWarning, match="copy construct"):  # torch's own
        torch.tensor(torch.ones(2, requires_grad=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wxb.tensor(h.detach(), requires_grad=True).requires_grad
