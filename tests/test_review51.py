"""Review of stop 51's merges: defects that gave other numbers (or calls) than torch's."""

import numpy as np
import pytest

import wxb

torch = pytest.importorskip("torch")


def _function_with_a_count_between(lib):
    """forward gives (x·y, a count, eˣ + y): torch's backward gets None for the count."""
    base = torch.autograd.Function if lib is torch else wxb.autograd.Function
    seen = []

    class WithCount(base):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y, 3, x.exp() + y

        @staticmethod
        def backward(ctx, g_product, g_count, g_sum):
            seen.append(g_count)
            x, y = ctx.saved_tensors
            return g_product * y + g_sum * x.exp(), g_product * x + g_sum

    return WithCount, seen


def test_function_backward_gets_none_for_a_non_tensor_output(seeded):
    # A Function whose forward returns a number between tensors: torch passes backward
    # one gradient per output, None for the number; wxb passed the tensors' alone, so
    # the gradients after it arrived one place early (a TypeError, or another output's
    # gradient read as the count's)
    rng = seeded.rng
    x0, y0, w0 = (rng.normal(size=(3, 4)) for _ in range(3))
    grads = {}
    for lib in (torch, wxb):
        fn, seen = _function_with_a_count_between(lib)
        x = lib.tensor(x0.copy(), requires_grad=True)
        y = lib.tensor(y0.copy(), requires_grad=True)
        product, count, total = fn.apply(x, y)
        assert count == 3
        loss = (product * product).sum() + (total * lib.tensor(w0)).sum()
        loss.backward()
        assert seen == [None], seeded.msg(f"{lib.__name__}: backward's count gradient {seen}")
        grads[lib] = [np.asarray(t.grad.detach().numpy() if lib is torch else t.grad.data)
                      for t in (x, y)]  # fmt: skip
    for ours, theirs in zip(grads[wxb], grads[torch], strict=True):
        # float64, a few operations an element: within a few ulps of torch's
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12, err_msg=seeded.msg("∂L"))


@pytest.mark.parametrize("kind", ["full", "pre"])
def test_why_not_planned_names_a_models_own_backward_hook_as_fit_does(seeded, kind):
    # A backward hook on the Sequential itself: fit trained it on the graph (the planned
    # step never calls the model, so the hook would not run), History.engine_reason
    # saying so, while model.why_not_planned() answered None ('planned')
    rng = seeded.rng
    model = wxb.nn.Sequential(wxb.nn.Dense(5, 4), wxb.nn.ReLU(), wxb.nn.Dense(4, 2))
    calls = []
    if kind == "full":
        handle = model.register_full_backward_hook(lambda m, gi, go: calls.append(go))
    else:
        handle = model.register_full_backward_pre_hook(lambda m, go: calls.append(go))
    X = rng.normal(size=(16, 5)).astype(np.float32)
    history = wxb.fit(model, X, rng.integers(0, 2, 16), epochs=1, batch_size=8, verbose=0)
    assert history.engine == "graph" and len(calls) == 2, seeded.msg(history.engine)
    assert history.engine_reason is not None
    assert model.why_not_planned() == history.engine_reason, seeded.msg(model.why_not_planned())
    handle.remove()
    assert model.why_not_planned() is None
    assert wxb.fit(model, X, rng.integers(0, 2, 16), epochs=1, verbose=0).engine == "planned"
