"""A review of the recorded in-place operations, against PyTorch 2.13: random programs of
operations and in-place operations on computed tensors (torch refuses ⇔ wxb refuses;
otherwise the same gradients), and the cases the sweep found, each on fresh values:
an in-place operation whose operand is the tensor itself (t += t, t.copy_(t),
t[0] = t[1]), a view of a view taken before a change, and a view without a record (of a
constant, or taken under no_grad) whose tensor an in-place operation then recorded.

A view taken before a change of its tensor and used after it is taken again through
the change, as torch's (test_view_inplace48 checks in-place changes of views); wxb's one
documented refusal left here: a constant's view taken before an in-place operation
joined the constant to the graph, used after it in an op (torch takes it again)."""

import numpy as np
import pytest

import wxb
from wxb.errors import TrainingError

torch = pytest.importorskip("torch")

SHAPE = (3, 4)
UNARY = (
    "exp sigmoid tanh relu mulc square sumk clone sqrtabs neg softmax lse amax divc T idx "
    "row mm lrelu gelu maxdim"
).split()
VIEWS = ("T", "idx", "row")  # (their results view their operand)
BINARY = ("add", "mul", "sub", "div")
IN_PLACE = (
    "iadd imul isub idiv relu_ sigmoid_ exp_ tanh_ mask0 setrow clamp_ copy_ zero_ fill_ "
    "neg_ mul_c nograd_add masked_fill_ setcol add_alpha iadd_row"
).split()


def _program(rng, steps):
    """Steps over a pool that starts as x, w (leaves requiring grad) and c (a constant);
    an in-place step changes a computed tensor that is not a view (wxb refuses those, as
    documented). ``stale``: a view was taken before its tensor changed in place (wxb may
    refuse its use after the change, as documented)."""
    prog, n, computed, viewed, made, changed = [], 3, [], {}, {}, {}
    for step in range(steps):
        targets = [i for i in computed if i not in viewed]
        if rng.random() < 0.45 or not targets:
            if rng.random() < 0.5:
                op, a = str(rng.choice(UNARY)), int(rng.integers(n))
                prog.append(("un", op, a))
                if op in VIEWS:
                    viewed[n] = viewed.get(a, a)
            else:
                prog.append(("bin", str(rng.choice(BINARY)), *map(int, rng.integers(n, size=2))))
            made[n] = step
            computed.append(n)
            n += 1
        else:
            t = int(rng.choice(targets))
            changed.setdefault(t, []).append(step)
            op, other, row = str(rng.choice(IN_PLACE)), int(rng.integers(n)), int(rng.integers(3))
            prog.append(("in", op, t, other, row))
    stale = any(s > made[v] for v, base in viewed.items() for s in changed.get(base, []))
    return prog, n, stale, set(viewed)


def _unary(lib, op, t):
    F = lib.nn.functional
    forms = {
        "exp": lambda: (t * 0.3).exp(),
        "sigmoid": t.sigmoid,
        "tanh": t.tanh,
        "relu": t.relu,
        "mulc": lambda: t * 1.5,
        "square": lambda: t * t,
        "sumk": lambda: t.sum(1, keepdim=True).expand(*SHAPE) * 1.0,
        "clone": t.clone,
        "sqrtabs": lambda: (t.abs() + 1.0).sqrt(),
        "neg": lambda: -t,
        "softmax": lambda: t.softmax(1),
        "lse": lambda: t.logsumexp(1, keepdim=True) * t,
        "amax": lambda: t.amax(1, keepdim=True) * t,
        "divc": lambda: t / 2.0,
        "T": lambda: t.T.T,
        "idx": lambda: t[:, :],
        "row": lambda: t[1].expand(*SHAPE),
        "mm": lambda: t @ t.T @ t * 0.2,
        "lrelu": lambda: F.leaky_relu(t, 0.1),
        "gelu": lambda: F.gelu(t),
        "maxdim": lambda: t.max(1, keepdim=True)[0] * t,
    }
    return forms[op]()


def _binary(op, a, b):
    return {"add": a + b, "mul": a * b, "sub": a - b, "div": a / (b * b + 1.0)}[op]


def _in_place(lib, op, t, o, row, mask):
    mask = lib.tensor(mask) if lib is torch else mask
    if op == "iadd":
        t += o
    elif op == "imul":
        t *= o
    elif op == "isub":
        t -= o
    elif op == "idiv":
        t /= o * o + 1.0
    elif op in ("relu_", "sigmoid_", "exp_", "tanh_", "neg_"):
        getattr(t, op)()
    elif op == "mask0":
        t[mask] = 0.0
    elif op == "setrow":
        t[row] = o[row]
    elif op == "clamp_":
        t.clamp_(-0.5, 0.7)
    elif op == "copy_":
        t.copy_(o)
    elif op == "zero_":
        t.zero_()
    elif op == "fill_":
        t.fill_(0.25)
    elif op == "mul_c":
        t.mul_(2.0)
    elif op == "nograd_add":
        with lib.no_grad():
            t += 0.5
    elif op == "masked_fill_":
        t.masked_fill_(mask, -1.0)
    elif op == "setcol":
        t[:, row] = o[:, row + 1] * 2.0
    elif op == "add_alpha":
        t.add_(o, alpha=0.5)
    elif op == "iadd_row":
        t += o[row]


def _array(lib, t):
    return None if t is None else np.array(t.detach().numpy() if lib is torch else t.data)


def _run(lib, case):
    """The program in ``lib``, then its backward as ``case["mode"]`` says: the leaves'
    gradients (None where the loss does not reach one)."""
    prog, n, data, mask, weights, mode, views = (
        case[k] for k in "prog n data mask w mode views".split()
    )
    x = lib.tensor(data[0].copy(), requires_grad=True, dtype=lib.float64)
    w = lib.tensor(data[1].copy(), requires_grad=True, dtype=lib.float64)
    pool = [x, w, lib.tensor(data[2].copy(), dtype=lib.float64)]
    for step in prog:
        if step[0] == "un":
            pool.append(_unary(lib, step[1], pool[step[2]]))
        elif step[0] == "bin":
            pool.append(_binary(step[1], pool[step[2]], pool[step[3]]))
        else:
            _in_place(lib, step[1], pool[step[2]], pool[step[3]], step[4], mask)
    loss = sum((pool[i] * float(weights[i])).sum() for i in range(n) if case["used"][i])
    if mode == "grad":
        return [_array(lib, g) for g in lib.autograd.grad(loss, [x, w], allow_unused=True)]
    loss.backward(retain_graph=mode != "once")
    if mode == "twice":  # .grad accumulates over the two
        loss.backward()
    elif mode == "change":  # an in-place change between two backwards of one graph
        t = pool[case["change"] % n]
        if t.requires_grad and t.grad_fn is not None and case["change"] % n not in views:
            t.mul_(1.5)
        loss.backward()
    return [_array(lib, t.grad) for t in (x, w)]


def _outcome(lib, case):
    try:
        return _run(lib, case), None
    except (RuntimeError, wxb.errors.WxbError) as error:
        return None, error


def _case(rng, steps):
    prog, n, stale, views = _program(rng, steps)
    used = rng.random(n) < 0.6
    used[[0, n - 1]] = True  # (x keeps the loss recorded)
    return {
        "prog": prog,
        "n": n,
        "stale": stale,
        "views": views,
        "used": used,
        "w": rng.standard_normal(n),
        "data": [rng.standard_normal(SHAPE) for _ in range(3)],
        "mask": rng.random(SHAPE) < 0.4,
        "mode": str(rng.choice(["once", "twice", "grad", "change"])),
        "change": int(rng.integers(100)),
    }


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_random_programs_of_in_place_operations_refuse_and_differentiate_as_torch(seeded):
    # float64 on both sides, ten steps of well-conditioned operations: the two agree to
    # a few ulps of the values (≲1e-13 relative); a wrong gradient is off by O(1)
    for k in range(80):
        case = _case(seeded.rng, 10)
        told = seeded.msg(f"program {k} ({case['mode']}): {case['prog']}")
        expected, torch_error = _outcome(torch, case)
        got, error = _outcome(wxb, case)
        if torch_error is not None and "single memory location" in str(torch_error):
            continue  # torch refuses t += t[i] (overlap); wxb computes it on a copy
        if torch_error is None and error is not None and case["stale"]:
            # documented: a constant's view from before the change that joined it to the
            # graph, used after it in an op
            assert isinstance(error, TrainingError) and "joined to the graph" in str(error), told
            continue
        assert (torch_error is None) == (error is None), (
            f"{told}: torch {torch_error!r}, wxb {error!r}"
        )
        if error is not None:
            continue
        for name, a, b in zip("xw", expected, got, strict=True):
            if a is None or b is None:  # (None and zeros: no gradient reached it)
                assert not np.any(a if b is None else b), f"{told}: ∂L/∂{name}"
                continue
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9, err_msg=f"{told}: ∂L/∂{name}")


def _both(fn, rng, shape=SHAPE):
    """``fn(lib, x)`` in torch and in wxb on the same float64 values: x.grad of each, or
    the error each raised."""
    values = rng.standard_normal(shape)
    out = []
    for lib in (torch, wxb):
        x = lib.tensor(values.copy(), requires_grad=True, dtype=lib.float64)
        try:
            fn(lib, x).backward()
            out.append(_array(lib, x.grad))
        except (RuntimeError, wxb.errors.WxbError) as error:
            out.append(error)
    return out


SELF_CHANGES = {
    "y += y": lambda y: y.__iadd__(y),
    "y.copy_(y)": lambda y: y.copy_(y),
    "y[0] = y[1]": lambda y: y.__setitem__(0, y[1]),
    "y.add_(y, alpha)": lambda y: y.add_(y, alpha=0.5),
    "y -= y * 0.5": lambda y: y.__isub__(y * 0.5),
    "y *= y": lambda y: y.__imul__(y),  # (⊙ keeps both factors: refused, as torch's)
}


def test_an_in_place_operation_on_itself_then_another_as_torch(seeded):
    """y += y recorded y's new record as reading y itself: the backward refused it as a
    stale view, and a second in-place operation on y as "a view of another tensor"."""
    for name, change in SELF_CHANGES.items():

        def fn(lib, x, change=change):
            y = x * 2.0
            change(y)
            y *= 3.0
            y.relu_()
            return (y * y).sum()

        expected, got = _both(fn, seeded.rng)
        told = seeded.msg(name)
        if isinstance(expected, Exception):
            assert isinstance(got, TrainingError), f"{told}: torch refused, wxb gave {got}"
            continue
        assert not isinstance(got, Exception), f"{told}: wxb refused: {got}"
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=told)


@pytest.mark.parametrize(
    "view",
    [lambda y: y.T.T, lambda y: y[1:][:, 1:], lambda y: y.reshape(-1)[2:].reshape(2, 5)],
    ids=["y.T.T", "y[1:][:, 1:]", "reshape then slice"],
)
def test_a_view_of_a_view_from_before_a_change_is_taken_again_as_torchs(view, seeded):
    """A view of a view (y.T.T) taken before y changed in place and used after it: its
    values are y's new ones, its record y's old one; the backward ran through the old
    record (gradients of the old values, without a word). Refused then; now taken
    again through the change, as torch's: torch's gradient, as the view taken after."""

    def before(lib, x):
        y = x * 2.0
        v = view(y)
        y.tanh_()
        return (v * 3.0).sum()

    def after(lib, x):
        y = x * 2.0
        y.tanh_()
        return (view(y) * 3.0).sum()

    for fn in (before, after):
        expected, got = _both(fn, seeded.rng)
        told = seeded.msg(fn.__name__)
        assert not isinstance(got, Exception), f"{told}: {got}"
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=told)


@pytest.mark.parametrize("use", ["product", "copy_", "+="])
def test_a_constants_view_from_before_a_recorded_change_is_refused_or_takes_its_gradient(
    use, seeded
):
    """z = zeros(…); v = z[:2]; z += x: torch's v takes the gradient of the change; wxb's
    v had no record, so what was computed from it reached x with nothing, without a
    word. Refused where v is used after the change in an op (its rule was made before
    v was taken again); as an in-place operation's operand it is taken again (torch's
    gradient)."""

    def fn(lib, x):
        w = x[:2] * 0.5 + 1.0
        z = lib.zeros(*SHAPE, dtype=lib.float64)
        v = z[:2]
        z += x
        if use == "product":
            return (v * w).sum()
        if use == "copy_":
            c = lib.zeros(2, 4, dtype=lib.float64)
            c.copy_(v)
            return (c * w).sum() + z.sum()
        h = w * 1.0
        h += v
        return (h * h).sum()

    expected, got = _both(fn, seeded.rng)
    if use == "product":
        assert isinstance(got, TrainingError) and "joined to the graph" in str(got), got
        return
    assert not isinstance(got, Exception), seeded.msg(f"wxb refused: {got}")
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=seeded.msg(use))


def test_a_view_taken_under_no_grad_then_its_tensor_changed_with_grad_refuses_as_torch(seeded):
    def fn(lib, x):
        h = x * 2.0
        with lib.no_grad():
            v = h[1:]
        h += 1.0
        return h.sum() + (v * x[1:]).sum()

    expected, got = _both(fn, seeded.rng)
    assert isinstance(expected, RuntimeError)
    assert isinstance(got, TrainingError), seeded.msg(f"wxb gave {got}")

    # what the refusals must not catch: a constant's view used before the change or
    # under no_grad, one taken after it, a detached tensor (no view of the graph in torch)
    def allowed(lib, x):
        z = lib.zeros(*SHAPE, dtype=lib.float64)
        d = z.detach()
        v = z[:2]
        s = (v * 2.0).sum()  # (used before the change: its values then)
        z += x
        with lib.no_grad():
            m = (v * 1.0).sum()
        after = z[:2]
        return (after * 3.0).sum() + (z * d).sum() + s + m * 0.0

    expected, got = _both(allowed, seeded.rng)
    assert not isinstance(got, Exception), seeded.msg(f"wxb refused: {got}")
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=seeded.msg("∂L/∂x"))


@pytest.mark.parametrize("returns", ["x", "x[:2]"])
def test_a_function_handing_back_its_input_refuses_an_in_place_change_as_torch(returns, seeded):
    """A Function whose forward returns its input (or a view of it): y.relu_() wrote
    into the input's array, a parameter's, without a word (its version unchanged);
    torch refuses it (the output is a view of the input)."""
    values = seeded.rng.standard_normal(3)
    errors = []
    for lib in (torch, wxb):

        class Pass(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x if returns == "x" else x[:2]

            @staticmethod
            def backward(ctx, g):
                return g

        for make in (lambda w: w, lambda w: w * 1.0):  # a leaf, a computed tensor
            w = lib.tensor(values.copy(), requires_grad=True, dtype=lib.float64)
            source = make(w)
            y = Pass.apply(source)
            with pytest.raises((RuntimeError, TrainingError)) as caught:
                y.relu_()
            errors.append(caught.value)
            assert np.array_equal(_array(lib, source), values), seeded.msg(lib.__name__)
    assert all(isinstance(e, TrainingError) for e in errors[2:])
