"""Tied, shared and frozen parameters as PyTorch users write them, trained beside torch.

Drawn fresh each run (the seed is printed; ``WXB_TEST_SEED`` replays it), in float64.
"""

import numpy as np
import pytest
import torch
from torch_twins import tanh_autoencoder_head

import wxb
from wxb import nn
from wxb.nn.module import Parameter

OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop")


def settings(rng, name: str) -> dict:
    options = {"lr": float(rng.uniform(0.005, 0.05)), "weight_decay": float(rng.uniform(0, 0.1))}
    if name == "SGD":
        options.update(momentum=float(rng.uniform(0.5, 0.95)), nesterov=True)
    elif name == "RMSprop":
        options.update(momentum=float(rng.choice([0.0, 0.5])), centered=bool(rng.random() < 0.5))
    return options


def assert_close(seeded, what, ours, theirs) -> None:
    np.testing.assert_allclose(
        ours, theirs.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=seeded.msg(what)
    )


@pytest.mark.parametrize("view", ["T", "detach", "itself"])
def test_a_parameter_made_of_another_parameters_view_steps_in_its_memory_as_torchs(seeded, view):
    """``dec.weight = nn.Parameter(enc.weight.t())``, an autoencoder's decoder as PyTorch
    users tie it: torch's Parameter keeps the tensor's memory, so the two parameters
    (each with its own gradient and optimiser state) are stepped in one array. wxb copied
    it: two untied layers, 0.08 apart from torch's after three SGD steps."""
    rng = seeded.rng
    d = int(rng.integers(2, 6))
    h = d if view != "T" else int(rng.integers(2, 6))
    k = int(rng.integers(2, 5))
    ours, theirs = tanh_autoencoder_head(d, h, k)
    source, tsource = ours[0].weight, theirs[0].weight
    given = {"T": source.T, "detach": source.detach(), "itself": source}[view]
    tgiven = {"T": tsource.t(), "detach": tsource.detach(), "itself": tsource}[view]
    ours[2].weight, theirs[2].weight = Parameter(given), torch.nn.Parameter(tgiven)
    assert np.shares_memory(ours[2].weight.data, source.data), seeded.msg("a copy")
    name = str(rng.choice(OPTIMIZERS))
    options = settings(rng, name)
    opt = getattr(wxb.optim, name)(ours.parameters(), **options)
    ref = getattr(torch.optim, name)(theirs.parameters(), **options)
    where = f"{name} {options}, Parameter(enc.weight{'.' + view if view != 'itself' else ''})"
    for step in range(4):
        X = rng.normal(size=(int(rng.integers(2, 7)), d))
        y = rng.integers(0, k, size=len(X))
        opt.zero_grad()
        ref.zero_grad()
        nn.CrossEntropyLoss()(ours(X), y).backward()
        torch_X, torch_y = torch.from_numpy(X), torch.from_numpy(y)
        torch.nn.functional.cross_entropy(theirs(torch_X), torch_y).backward()
        opt.step()
        ref.step()
        for (path, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
            assert_close(seeded, f"{where}: step {step + 1} {path}", p.data, q)
    # fit trains such a model as torch's loop does, on the same batches
    X = rng.normal(size=(12, d))
    y = rng.integers(0, k, size=12)
    wxb.fit(ours, X, y, optimizer=opt, epochs=1, batch_size=4, shuffle=False, verbose=False)
    for start in range(0, 12, 4):
        ref.zero_grad()
        rows = slice(start, start + 4)
        torch.nn.functional.cross_entropy(
            theirs(torch.from_numpy(X[rows])), torch.from_numpy(y[rows])
        ).backward()
        ref.step()
    for (path, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert_close(seeded, f"{where}: after fit, {path}", p.data, q)


def test_an_embedding_made_from_an_output_layers_weight_moves_with_it_as_torchs(seeded):
    """``Embedding.from_pretrained(out.weight, freeze=False)``: torch's Embedding keeps the
    tensor's memory, so the table and the output layer (each with its own gradient and
    optimiser state) are stepped in one array; wxb's copied it, untying them."""
    rng = seeded.rng
    vocab, width = int(rng.integers(3, 9)), int(rng.integers(2, 5))
    libraries = []
    for lib, dtype in ((nn, "float64"), (torch.nn, torch.float64)):
        out = lib.Linear(width, vocab, dtype=dtype)
        mix = lib.Linear(width, width, dtype=dtype)
        libraries.append([out, mix])
    (out, mix), (tout, tmix) = libraries
    with torch.no_grad():
        for p, q in zip(
            [*out.parameters(), *mix.parameters()],
            [*tout.parameters(), *tmix.parameters()],
            strict=True,
        ):
            q.copy_(torch.from_numpy(p.data.copy()))
    emb = nn.Embedding.from_pretrained(out.weight, freeze=False)
    temb = torch.nn.Embedding.from_pretrained(tout.weight, freeze=False)
    ours, theirs = (
        [*emb.parameters(), *mix.parameters(), *out.parameters()],
        [*temb.parameters(), *tmix.parameters(), *tout.parameters()],
    )
    name = str(rng.choice(OPTIMIZERS))
    options = settings(rng, name)
    opt = getattr(wxb.optim, name)(ours, **options)
    ref = getattr(torch.optim, name)(theirs, **options)
    for step in range(4):
        ids = rng.integers(0, vocab, size=int(rng.integers(2, 7)))
        y = rng.integers(0, vocab, size=len(ids))
        opt.zero_grad()
        ref.zero_grad()
        nn.CrossEntropyLoss()(out(mix(emb(ids)).tanh()), y).backward()
        torch_ids, torch_y = torch.from_numpy(ids), torch.from_numpy(y)
        torch.nn.functional.cross_entropy(tout(tmix(temb(torch_ids)).tanh()), torch_y).backward()
        opt.step()
        ref.step()
        for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
            assert_close(seeded, f"{name} {options}: step {step + 1}, parameter {i}", p.data, q)


@pytest.mark.parametrize("direction", ["to_torch", "from_torch"])
def test_weights_tied_through_memory_stay_tied_in_the_converted_twin(seeded, direction):
    """A decoder stepped in its encoder's memory (``Parameter(enc.weight.T)``, or
    ``dec.weight.data = enc.weight.data.T``) converted to or from PyTorch: each twin was
    given a copy of its own, so the converted model trained the two apart (0.02-0.04
    after three SGD steps) without a word."""
    from wxb.interop import from_torch, to_torch

    rng = seeded.rng
    d, h = (int(n) for n in rng.integers(2, 6, size=2))
    through_data = bool(rng.random() < 0.5)
    if direction == "to_torch":
        ours = nn.Sequential(
            nn.Linear(d, h, dtype="float64"), nn.Tanh(), nn.Linear(h, d, dtype="float64")
        )
        if through_data:
            ours[2].weight.data = ours[0].weight.data.T
        else:
            ours[2].weight = Parameter(ours[0].weight.T)
        theirs = to_torch(ours)
    else:
        theirs = torch.nn.Sequential(
            torch.nn.Linear(d, h, dtype=torch.float64),
            torch.nn.Tanh(),
            torch.nn.Linear(h, d, dtype=torch.float64),
        )
        if through_data:
            theirs[2].weight.data = theirs[0].weight.data.t()
        else:
            theirs[2].weight = torch.nn.Parameter(theirs[0].weight.t())
        ours = from_torch(theirs)
    name = str(rng.choice(OPTIMIZERS))
    options = settings(rng, name)
    opt = getattr(wxb.optim, name)(ours.parameters(), **options)
    ref = getattr(torch.optim, name)(theirs.parameters(), **options)
    tie = "through .data" if through_data else "Parameter(enc.weight.T)"
    for step in range(3):
        X = rng.normal(size=(int(rng.integers(2, 7)), d))
        opt.zero_grad()
        ref.zero_grad()
        ((ours(X) - X) ** 2).mean().backward()
        torch_X = torch.from_numpy(X)
        ((theirs(torch_X) - torch_X) ** 2).mean().backward()
        opt.step()
        ref.step()
        for (path, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
            where = f"{direction}, tied {tie}, {name} {options}: step {step + 1} {path}"
            assert_close(seeded, where, p.data, q)


def test_a_weight_viewing_a_later_layers_memory_is_refused_by_either_conversion():
    """The memory's holder after its transposed view: no twin view reaches it, so the
    conversion is refused in one line rather than made untied."""
    from wxb.interop import from_torch, to_torch

    ours = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))
    ours[0].weight = Parameter(ours[2].weight.T)
    with pytest.raises(wxb.ConfigError, match=r"the weight of module 'dense2'.*memory"):
        to_torch(ours)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    theirs[0].weight = torch.nn.Parameter(theirs[2].weight.t())
    with pytest.raises(wxb.ConfigError, match=r"the weight of module '2'.*memory"):
        from_torch(theirs)


# -- a generator of tied and frozen training runs, as PyTorch users write them ------------------
def _twins(rng):
    """One drawn model for each library, the same weights: a tied Dense pair, a layer
    used twice, an embedding tied to its output layer, a decoder stepped in its encoder's
    memory; its kind, and how to draw a batch for it."""
    kind = str(rng.choice(["tied", "twice", "embedding", "memory"]))
    d, k = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    models = []
    for lib, dtype in ((nn, "float64"), (torch.nn, torch.float64)):
        if kind == "embedding":
            layers = [lib.Embedding(k, d, dtype=dtype), lib.Linear(d, d, dtype=dtype)]
            layers += [lib.Tanh(), lib.Linear(d, k, dtype=dtype)]
        else:
            layers = [lib.Linear(d, d, dtype=dtype), lib.Tanh(), lib.Linear(d, d, dtype=dtype)]
            layers += [lib.Tanh(), lib.Linear(d, k, dtype=dtype)]
        models.append(lib.Sequential(*layers))
    ours, theirs = models
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            q.copy_(torch.from_numpy(p.data.copy()))
    for model, make in ((ours, Parameter), (theirs, torch.nn.Parameter)):
        if kind == "tied":
            model[2].weight = model[0].weight
        elif kind == "twice":
            model[2] = model[0]
        elif kind == "embedding":
            model[3].weight = model[0].weight
        else:
            model[2].weight = make(model[0].weight.T)
    if kind == "embedding":
        return kind, ours, theirs, lambda n: rng.integers(0, k, size=n), k
    return kind, ours, theirs, lambda n: rng.normal(size=(n, d)), k


def _optimisers(rng, ours, theirs):
    """A drawn optimiser of each library over a drawn subset of the parameters, in one or
    two groups with their own rates and weight decay."""
    name = str(rng.choice(OPTIMIZERS))
    held = sorted(rng.permutation(len(ours))[: int(rng.integers(1, len(ours) + 1))])
    cut = int(rng.integers(1, len(held))) if len(held) > 1 and rng.random() < 0.5 else len(held)
    groups = [g for g in (held[:cut], held[cut:]) if g]
    specs = [
        {"lr": float(rng.uniform(0.005, 0.05)), "weight_decay": float(rng.uniform(0, 0.1))}
        for _ in groups
    ]
    options = settings(rng, name)
    made = []
    for lib, params in ((wxb.optim, ours), (torch.optim, theirs)):
        chosen = [
            {"params": [params[i] for i in g], **s} for g, s in zip(groups, specs, strict=True)
        ]
        made.append(getattr(lib, name)(chosen, **options))
    return (*made, f"{name} {options} groups {groups} {specs}")


def test_drawn_tied_and_frozen_runs_train_as_torchs(seeded):
    """Tied models trained by hand beside torch, with a drawn optimiser over some of the
    parameters, layers frozen and unfrozen between steps (their momentum and moments
    kept), zero_grad either way or not at all, gradients clipped over lists built layer
    by layer (a tied weight listed twice), and the optimiser rebuilt from torch's state
    mid-run (interop.optimizer_from_torch, a frozen parameter never stepped having none):
    outputs, gradients and weights compared after every step."""
    from wxb.interop import optimizer_from_torch

    rng = seeded.rng
    kind, ours, theirs, batch, classes = _twins(rng)
    mine, torchs = ours.parameters(), list(theirs.parameters())
    names = [path for path, _ in ours.named_parameters()]
    opt_seed = int(rng.integers(2**62))
    opt, ref, what = _optimisers(np.random.default_rng(opt_seed), mine, torchs)
    log = [f"a {kind} model, {what}"]
    for step in range(int(rng.integers(4, 8))):
        if rng.random() < 0.4:
            i = int(rng.integers(len(mine)))
            flag = not mine[i].requires_grad
            mine[i].requires_grad_(flag)
            torchs[i].requires_grad_(flag)
            log.append(f"{names[i]}.requires_grad_({flag})")
        if rng.random() < 0.15:
            opt, _, _ = _optimisers(np.random.default_rng(opt_seed), mine, torchs)
            optimizer_from_torch(ref, opt)
            log.append("optimiser rebuilt from torch's")
        how = str(rng.choice(["optimiser", "model", "none"]))
        to_none = bool(rng.random() < 0.5)
        if how != "none":
            for zeroed in (opt, ref) if how == "optimiser" else (ours, theirs):
                zeroed.zero_grad(set_to_none=to_none)
        log.append(f"step {step + 1}: zero_grad on the {how} (set_to_none={to_none})")
        where = "; ".join(log)
        X = batch(int(rng.integers(1, 7)))
        y = rng.integers(0, classes, size=len(X))
        out, torch_out = ours(X), theirs(torch.from_numpy(X))
        assert_close(seeded, f"{where}: output", out.data, torch_out)
        if any(p.requires_grad for p in mine):
            nn.CrossEntropyLoss()(out, y).backward()
            torch.nn.functional.cross_entropy(torch_out, torch.from_numpy(y)).backward()
        if rng.random() < 0.4:
            listed = list(rng.integers(0, len(mine), size=int(rng.integers(1, len(mine) + 2))))
            at = float(rng.uniform(0.01, 1.0))
            total = nn.utils.clip_grad_norm_([mine[i] for i in listed], at)
            expected = torch.nn.utils.clip_grad_norm_([torchs[i] for i in listed], at)
            assert_close(seeded, f"{where}: clip over {listed}", total, expected)
        for path, p, q in zip(names, mine, torchs, strict=True):
            assert (p.grad is None) == (q.grad is None), seeded.msg(f"{where}: {path}.grad")
            if p.grad is not None:
                assert_close(seeded, f"{where}: {path}.grad", p.grad, q.grad)
        opt.step()
        ref.step()
        for path, p, q in zip(names, mine, torchs, strict=True):
            assert_close(seeded, f"{where}: {path}", p.data, q)
