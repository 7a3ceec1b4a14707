"""A PyTorch Sequential's state_dict (its layers named by position: ``0.weight``) loads
into the wxb Sequential built of the same layers, and the outputs then equal PyTorch's;
a state whose positions do not all fit is refused whole, never loaded in part."""

from __future__ import annotations

import numpy as np
import pytest

import wxb
from wxb.errors import ShapeError

torch = pytest.importorskip("torch")
nn = wxb.nn


def _pair(rng: np.random.Generator) -> tuple[object, object, int]:
    """A random torch Sequential (nested, normalised, a layer used twice) and the wxb
    Sequential of the same layers in the same places, freshly initialised."""
    width = int(rng.integers(2, 7))
    inputs = width
    torch_layers, wxb_layers = [], []
    for _ in range(int(rng.integers(1, 4))):
        out = int(rng.integers(2, 7))
        kind = rng.choice(["plain", "nested", "norm", "twice"])
        if kind == "plain":
            torch_layers += [torch.nn.Linear(inputs, out), torch.nn.Tanh()]
            wxb_layers += [nn.Linear(inputs, out), nn.Tanh()]
        elif kind == "nested":
            torch_layers.append(torch.nn.Sequential(torch.nn.Linear(inputs, out), torch.nn.ReLU()))
            wxb_layers.append(nn.Sequential(nn.Linear(inputs, out), nn.ReLU()))
        elif kind == "norm":
            torch_layers += [torch.nn.Linear(inputs, out), torch.nn.BatchNorm1d(out)]
            wxb_layers += [nn.Linear(inputs, out), nn.BatchNorm1d(out)]
        else:  # one square layer in two places, as torch.nn.Sequential(l, l)
            out = inputs
            tl, wl = torch.nn.Linear(inputs, out), nn.Linear(inputs, out)
            torch_layers += [tl, torch.nn.Tanh(), tl]
            wxb_layers += [wl, nn.Tanh(), wl]
        inputs = out
    torch_layers.append(torch.nn.Linear(inputs, 3))
    wxb_layers.append(nn.Linear(inputs, 3))
    return torch.nn.Sequential(*torch_layers).double(), nn.Sequential(*wxb_layers).double(), width


def test_a_torch_sequentials_state_loads_by_position_and_gives_its_outputs():
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    torch.manual_seed(int(seed % 2**31))
    for _ in range(20):
        theirs, ours, width = _pair(rng)
        theirs.train()  # a few steps of BatchNorm's running statistics, then eval
        with torch.no_grad():
            for _ in range(3):
                theirs(torch.from_numpy(rng.normal(size=(8, width))))
        theirs.eval()
        keys = ours.load_state_dict(theirs.state_dict())
        assert keys.missing_keys == [] and keys.unexpected_keys == [], (seed, keys)
        x = rng.normal(size=(6, width))
        expected = theirs(torch.from_numpy(x)).detach().numpy()
        ours.eval()
        np.testing.assert_allclose(
            ours(x).data, expected, rtol=1e-12, atol=1e-12, err_msg=str(seed)
        )


def test_positions_that_do_not_all_fit_are_refused_whole():
    # torch's ReLU between the Linears takes a place; a wxb model of the three layers
    # alone has the second at place 1: '2.weight' would land on the third layer, of the
    # same shape, without a word
    theirs = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.ReLU(),
        torch.nn.Linear(4, 4),
    ).double()  # fmt: skip
    ours = nn.Sequential(nn.Dense(4, 4), nn.Dense(4, 4), nn.Dense(4, 4)).double()
    before = {k: v.copy() for k, v in ours.state_dict().items()}
    with pytest.raises(ShapeError, match="unexpected"):
        ours.load_state_dict(theirs.state_dict())
    keys = ours.load_state_dict(theirs.state_dict(), strict=False)
    assert sorted(keys.unexpected_keys) == sorted(theirs.state_dict()), keys
    after = ours.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_a_mix_of_wxb_names_and_positions_loads_as_positions_alone_do():
    seed = np.random.SeedSequence().entropy
    rng = np.random.default_rng(seed)
    torch.manual_seed(int(seed % 2**31))
    theirs = torch.nn.Sequential(
        torch.nn.Linear(3, 5), torch.nn.Tanh(),
        torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU()), torch.nn.Linear(4, 2),
    ).double()  # fmt: skip
    ours = nn.Sequential(
        nn.Linear(3, 5), nn.Tanh(), nn.Sequential(nn.Linear(5, 4), nn.ReLU()), nn.Linear(4, 2)
    )
    positional = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    # the same arrays in the same order under wxb's names (no layer shared here)
    named = dict(zip(ours.state_dict(), positional.values(), strict=True))
    mixed = {**dict(list(named.items())[:3]), **dict(list(positional.items())[3:])}
    x = rng.normal(size=(4, 3))
    expected = theirs(torch.from_numpy(x)).detach().numpy()
    for state in (positional, named, mixed):
        model = nn.Sequential(
            nn.Linear(3, 5), nn.Tanh(), nn.Sequential(nn.Linear(5, 4), nn.ReLU()), nn.Linear(4, 2)
        ).double()
        keys = model.load_state_dict(state)
        assert not keys.missing_keys and not keys.unexpected_keys, (seed, list(state))
        np.testing.assert_allclose(model(x).data, expected, rtol=1e-12, atol=1e-12)
