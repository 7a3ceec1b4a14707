"""Small PyTorch-parity leftovers: parameter groups with and without names mixed."""

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
