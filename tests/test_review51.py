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
