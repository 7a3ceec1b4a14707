"""Review of the day's merges: defects found against PyTorch, each test failing before
its fix."""

import warnings

import numpy as np
import pytest

import wxb
from wxb.optim import lr_scheduler as ours_module

torch = pytest.importorskip("torch")
theirs_module = torch.optim.lr_scheduler


def _twin_sgd(rng, groups):
    rates = [float(v) for v in rng.uniform(0.01, 0.5, groups)]
    ours = wxb.optim.SGD(
        [{"params": wxb.nn.Dense(2, 2).parameters(), "lr": r} for r in rates], momentum=0.9
    )
    theirs = torch.optim.SGD(
        [{"params": torch.nn.Linear(2, 2).parameters(), "lr": r} for r in rates], momentum=0.9
    )
    return ours, theirs


def test_a_rate_set_by_hand_after_a_sequences_polynomial_ends_is_kept(seeded):
    """A PolynomialLR in a SequentialLR, past its total_iters, took a rate set by hand
    to 0 at the next step (the cosine, linear or constant before it, then 0.0 where
    PyTorch's gives the rate set, 0.2537): alone it kept it, as PyTorch's does."""
    rng = seeded.rng
    for _ in range(5):
        groups = int(rng.integers(1, 4))
        ours, theirs = _twin_sgd(rng, groups)
        first = {
            "ConstantLR": {"factor": float(rng.uniform(0.1, 1)), "total_iters": 2},
            "LinearLR": {"start_factor": float(rng.uniform(0.1, 1)), "total_iters": 3},
            "ExponentialLR": {"gamma": float(rng.uniform(0.5, 0.99))},
        }
        name = str(rng.choice(list(first)))
        milestone = int(rng.integers(1, 5))
        poly = {"total_iters": int(rng.integers(1, 5)), "power": float(rng.uniform(0.5, 3))}
        steps = milestone + poly["total_iters"] + int(rng.integers(2, 6))
        by_hand = int(rng.integers(milestone + poly["total_iters"], steps))

        def make(module, opt, name=name, milestone=milestone, poly=poly, first=first):
            return module.SequentialLR(
                opt,
                [getattr(module, name)(opt, **first[name]), module.PolynomialLR(opt, **poly)],
                [milestone],
            )

        schedule = make(ours_module, ours)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (PyTorch's: step(epoch) at the milestone)
            their_schedule = make(theirs_module, theirs)
            for step in range(steps + 1):
                msg = seeded.msg(f"{name} {first[name]} then {poly} from {milestone}, "
                                 f"by hand at {by_hand}, step {step}")  # fmt: skip
                np.testing.assert_allclose(
                    [g["lr"] for g in ours.param_groups],
                    [g["lr"] for g in theirs.param_groups],
                    rtol=1e-12, err_msg=msg,
                )  # fmt: skip
                if step == by_hand:
                    for mine, their in zip(ours.param_groups, theirs.param_groups, strict=True):
                        mine["lr"] = their["lr"] = float(rng.uniform(0.01, 0.5))
                if step < steps:
                    schedule.step()
                    their_schedule.step()


@pytest.mark.parametrize("form", ["list", "int64", "uint64"])
def test_whole_numbers_float32_rounds_are_refused_above_two_to_the_53(seeded, form):
    """wxb.tensor([2**53 + 1]) held 9007199254740992 without a word, the defect its check
    of whole numbers above 2**24 was made for: the check compared the float32 values
    with the integers in float64, where the two are equal. Each number is refused where
    float32 does not hold it (torch's own float32 says), and kept exactly where it does."""
    from wxb.errors import DataError

    rng = seeded.rng
    top = 63 if form == "int64" else 64
    for _ in range(20):
        power = int(rng.integers(25, top))
        value = 2**power + int(rng.integers(-3, 4)) * int(rng.choice([1, 2 ** max(power - 30, 0)]))
        if form == "int64" and value >= 2**63:
            value = 2**63 - 1
        sign = -1 if form == "list" and rng.random() < 0.5 else 1
        value *= sign
        values = [int(v) for v in rng.integers(0, 100, int(rng.integers(0, 4)))] + [value]
        data = values if form == "list" else np.array(values, dtype=form)
        held = int(torch.tensor([value], dtype=torch.float64).to(torch.float32).item())
        exact = held == value and abs(value) < 2**64
        msg = seeded.msg(f"{form} {value}: float32 holds {held}")
        if exact:
            assert int(wxb.tensor(data).data[-1]) == value, msg
        else:
            with pytest.raises(DataError, match="whole number"):
                wxb.tensor(data)
    if form == "list":  # small ints beside one past int64: NumPy reads them as float64
        value = 2**63 + int(rng.integers(1, 2**20))
        with pytest.raises(DataError, match="whole number"):
            wxb.tensor([int(rng.integers(0, 100)), value])


def test_readme_says_what_save_does_with_a_dense_whose_bias_is_a_buffer(tmp_path):
    """README said `wxb.save` refuses a Dense whose W or b is a buffer; it saves and loads
    it (a buffer again) since the model files list them (dense_buffers)."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    sentence = re.search(r"a Dense's W or b made a buffer[^|]*?\)\)", readme)
    assert sentence, "README no longer describes a Dense whose W or b is a buffer"
    lin = wxb.nn.Dense(3, 2)
    bias = lin.bias.data.copy()
    del lin.bias
    lin.register_buffer("bias", bias)
    model = wxb.nn.Sequential(lin)
    wxb.save(model, tmp_path / "m.safetensors")  # (raised before 0ae733b)
    loaded = wxb.load(tmp_path / "m.safetensors")
    assert [name for name, _ in loaded.named_buffers()] == ["dense1.bias"]
    assert "refuses it" not in sentence[0], sentence[0]
    assert "wxb.load" in sentence[0] and "buffer" in sentence[0], sentence[0]


SEQUENCE_OF_ONES_OWN = """
import wxb

STEP = {step}


def schedule(optimizer):
    warm = wxb.optim.LambdaLR(optimizer, lambda epoch: 0.5 ** (epoch // STEP))
    decay = wxb.optim.ExponentialLR(optimizer, gamma={gamma})
    return wxb.optim.SequentialLR(optimizer, [warm, decay], milestones=[{milestone}])
"""


def test_a_sequences_lambda_reading_a_changed_global_is_warned_of_not_refused(seeded, tmp_path):
    """A LambdaLR inside a SequentialLR whose function reads a global that changed (STEP
    in lambda e: 0.5 ** (e // STEP)) made the resume refuse with a dump of digests
    ("schedule differs (checkpoint {... '_globals': [...]"), where the same change on
    a LambdaLR alone is warned of (CheckpointWarning) and the run goes on, as the
    checkpoint digests' commit says; a changed setting there (gamma) is still refused,
    and the same code resumes silently as the uninterrupted run."""
    import warnings

    from wxb import nn
    from wxb.checkpoint import CheckpointWarning
    from wxb.errors import ConfigError

    rng = seeded.rng
    step, milestone = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    gamma = float(rng.choice([0.5, 0.8, 0.9]))
    X = rng.standard_normal((int(rng.integers(16, 40)), 3))
    y = rng.integers(0, 2, len(X))
    first, total = int(rng.integers(1, 3)), int(rng.integers(4, 7))

    def module(step, gamma):
        namespace: dict = {"__name__": "users_sequences"}
        source = SEQUENCE_OF_ONES_OWN.format(step=step, gamma=gamma, milestone=milestone)
        exec(compile(source, "<own>", "exec"), namespace)
        return namespace

    def run(namespace, epochs, folder):
        model = nn.Sequential(nn.Dense(3, 4, seed=1), nn.Tanh(), nn.Dense(4, 2, seed=2))
        optimizer = wxb.optim.SGD(model.to("float64").parameters(), lr=0.1)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            history = wxb.fit(model, X, y, optimizer=optimizer,
                              lr_schedule=namespace["schedule"](optimizer), epochs=epochs,
                              batch_size=8, seed=1, verbose=False, checkpoint_dir=folder,
                              resume=True)  # fmt: skip
        said = [str(w.message) for w in seen if issubclass(w.category, CheckpointWarning)]
        return history, said

    same = module(step, gamma)
    reference, _ = run(same, total, tmp_path / "whole")
    run(same, first, tmp_path / "same")
    resumed, said = run(module(step, gamma), total, tmp_path / "same")
    assert said == [] and resumed["lr"] == reference["lr"], seeded.msg(said)
    run(same, first, tmp_path / "changed")
    _, said = run(module(step + 1, gamma), total, tmp_path / "changed")
    assert any("globals its code reads (STEP)" in text for text in said), seeded.msg(said)
    run(same, first, tmp_path / "gamma")
    with pytest.raises(ConfigError, match="schedule differs"):
        run(module(step, round(gamma - 0.1, 2)), total, tmp_path / "gamma")


@pytest.mark.parametrize("optimiser", ["SGD", "Adam", "NAdam"])
def test_onecycle_keeps_a_group_at_lr_0_frozen_as_pytorchs(seeded, optimiser):
    """fit(optimizer=opt, lr_schedule="onecycle") on an optimiser with a group at lr 0 (a
    group frozen, as README says) was refused: 'OneCycleLR max_lr must be > 0; got
    0.0', though PyTorch's OneCycleLR takes max_lr 0 and keeps that group at 0. Now
    the group stays frozen and the others follow PyTorch's rates."""
    rng = seeded.rng
    rows, batch, epochs = int(rng.integers(10, 30)), int(rng.integers(3, 8)), 2
    X, y = rng.standard_normal((rows, 3)), rng.integers(0, 2, rows)
    model = wxb.nn.Sequential(wxb.nn.Dense(3, 4), wxb.nn.Tanh(), wxb.nn.Dense(4, 2))
    frozen = int(rng.integers(0, 2))
    rates = [0.0, float(rng.uniform(0.01, 0.2))][:: 1 if frozen == 0 else -1]
    kw = {"momentum": 0.9} if optimiser == "SGD" else {}
    layers = [model[0], model[2]]
    opt = getattr(wxb.optim, optimiser)(
        [{"params": m.parameters(), "lr": r} for m, r in zip(layers, rates, strict=True)], **kw
    )
    held = [p.data.copy() for p in layers[frozen].parameters()]
    history = wxb.fit(model, X, y, optimizer=opt, lr_schedule="onecycle", epochs=epochs,
                      batch_size=batch, verbose=False, seed=1)  # fmt: skip
    for before, p in zip(held, layers[frozen].parameters(), strict=True):
        np.testing.assert_array_equal(p.data, before, err_msg=seeded.msg("frozen group"))
    twins = [torch.zeros(1, requires_grad=True) for _ in rates]
    theirs = getattr(torch.optim, optimiser)(
        [{"params": [t], "lr": r} for t, r in zip(twins, rates, strict=True)], **kw
    )
    total = epochs * -(-rows // batch)
    schedule = theirs_module.OneCycleLR(theirs, max_lr=rates, total_steps=total)
    want = [[], []]
    for _ in range(epochs):
        for _ in range(-(-rows // batch)):
            trained = [g["lr"] for g in theirs.param_groups]
            theirs.step()
            schedule.step()
        for i in range(2):
            want[i].append(trained[i])
    np.testing.assert_allclose(history["lr"], want[0], rtol=1e-12, err_msg=seeded.msg("lr"))
    np.testing.assert_allclose(history["lr_group1"], want[1], rtol=1e-12, err_msg=seeded.msg(""))


WARM_UP_OF_ONES_OWN = """
import wxb

warm = {warm}  # a setting of the script's own, which the schedule never reads


class WarmUp(wxb.optim.LRSchedule):
    def __init__(self, optimizer):
        super().__init__(optimizer)
        self.warm = 3
        self.start()

    def lr_at(self, epoch, base_lr=None):
        base = self.base_lr if base_lr is None else base_lr
        return base * min(1.0, (epoch + 1) / self.warm) * {decay} ** epoch
"""


def test_a_global_of_an_attributes_name_is_no_global_the_schedule_reads(seeded, tmp_path):
    """A schedule of one's own reading self.warm, in a script with a global warm it never
    reads: a resume after that global changed warned that the schedule 'differs ... in
    the values of the globals its code reads (warm)', untrue: the digest took every name
    in the code (attributes too) for a global. Only names read as globals count now; a
    global the code does read (decay, below, when it is one) is still warned of."""
    import warnings

    from wxb import nn
    from wxb.checkpoint import CheckpointWarning

    rng = seeded.rng
    X = rng.standard_normal((int(rng.integers(16, 30)), 3))
    y = rng.integers(0, 2, len(X))
    first, total = int(rng.integers(1, 3)), int(rng.integers(4, 6))

    def module(warm, decay="0.9"):
        namespace: dict = {"__name__": "users_warm_up", "DECAY": 0.9}
        exec(compile(WARM_UP_OF_ONES_OWN.format(warm=warm, decay=decay), "<own>", "exec"),
             namespace)  # fmt: skip
        return namespace

    def run(namespace, epochs, folder):
        model = nn.Sequential(nn.Dense(3, 4, seed=1), nn.Tanh(), nn.Dense(4, 2, seed=2))
        optimizer = wxb.optim.SGD(model.to("float64").parameters(), lr=0.1)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            history = wxb.fit(model, X, y, optimizer=optimizer,
                              lr_schedule=namespace["WarmUp"](optimizer), epochs=epochs,
                              batch_size=8, seed=1, verbose=False, checkpoint_dir=folder,
                              resume=True)  # fmt: skip
        said = [str(w.message) for w in seen if issubclass(w.category, CheckpointWarning)]
        return history, said

    warm = int(rng.integers(1, 9))
    reference, _ = run(module(warm), total, tmp_path / "whole")
    run(module(warm), first, tmp_path / "other")
    resumed, said = run(module(warm + 1), total, tmp_path / "other")
    assert said == [], seeded.msg(said)
    assert resumed["lr"] == reference["lr"], seeded.msg("rates")
    reading = module(warm, decay="DECAY")
    run(reading, first, tmp_path / "read")
    reading["DECAY"] = 0.5
    _, said = run(reading, total, tmp_path / "read")
    assert any("globals its code reads (DECAY)" in text for text in said), seeded.msg(said)
