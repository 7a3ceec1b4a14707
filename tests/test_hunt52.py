"""Generated user models with NumPy operands, trained beside PyTorch, then saved and loaded.

The other generators (test_user_modules_hunt, test_gen_hunt46, test_user_models50,
test_graph_fuzz_hunt) draw residuals, shared and tied layers, gates, norms and frozen
parts, on operands that are tensors. This one draws forwards whose operands are NumPy's,
as a user mixes them in: NumPy scalars and arrays on either side of ``+ - * / ** @``
(``C - x``, ``M @ x.T``), ``abs(x)``, ``-x``; columns taken by NumPy int arrays (with
repeats), boolean masks and steps (``x[:, ::2]``), rows permuted by an int array;
``x.T``, ``reshape``/``view``/``flatten``/``unsqueeze``, ``cat``/``stack``; ``where``
with a NumPy mask; ``clamp``; ``max(dim)`` and reductions with ``keepdim``; Parameters
made directly and used in several places, a ``ParameterList``, ``ModuleList`` and
``ModuleDict``; an encoder's matrix used again transposed and one Parameter registered
in two layers (tied); a frozen layer and a ``detach()`` branch; a buffer; BatchNorm1d
and LayerNorm (train and eval differ); in-place changes of computed tensors, among them
ones PyTorch refuses at backward (a saved tensor changed), which wxb must refuse too.

Each block is written once for either library (``Lib``), so both models hold the same
names and, copied in, the same weights; all in float64. Compared to 1e-10: outputs in
train and eval mode, every parameter's gradient, the parameters after a few steps of a
random optimiser with two parameter groups (their own lr and weight decay) by a hand loop
and by ``wxb.fit``; then ``state_dict`` into a fresh model, through ``wxb.save``/
``wxb.load`` (the file's names are the state_dict's keys, for safetensors' torch reader),
tied parameters still one after loading, and ONNX export (refused in one line for a
module of one's own). The seed of each run is printed in the assertion (replay with
``WXB_TEST_SEED``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import wxb
import wxb.interop
import wxb.nn.functional as WF
import wxb.onnx
from wxb import nn
from wxb.errors import ConfigError, TrainingError

torch = pytest.importorskip("torch")
TF = torch.nn.functional

# NumPy's overflow warnings in a draw that diverges (inf and NaN compared where torch's are)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

H = 6  # the width every block takes and gives (even, and a multiple of 3)


class Lib:
    """What a block needs from a library, so that one block's code builds both models."""

    def __init__(self, is_torch: bool) -> None:
        self.torch = is_torch
        tn = torch.nn
        self.Module = tn.Module if is_torch else nn.Module
        self.ModuleList = tn.ModuleList if is_torch else nn.ModuleList
        self.ModuleDict = tn.ModuleDict if is_torch else nn.ModuleDict
        self.ParameterList = tn.ParameterList if is_torch else nn.ParameterList
        self.F = TF if is_torch else WF

    def linear(self, n: int, m: int, bias: bool = True):
        if self.torch:
            return torch.nn.Linear(n, m, bias=bias, dtype=torch.float64)
        return nn.Linear(n, m, bias=bias, dtype="float64")

    def batchnorm(self, n: int):
        if self.torch:
            return torch.nn.BatchNorm1d(n, dtype=torch.float64)
        return nn.BatchNorm1d(n, dtype="float64")

    def layernorm(self, n: int):
        if self.torch:
            return torch.nn.LayerNorm(n, dtype=torch.float64)
        return nn.LayerNorm(n, dtype="float64")

    def parameter(self, values: np.ndarray):
        values = np.array(values, dtype=np.float64)
        if self.torch:
            return torch.nn.Parameter(torch.from_numpy(values))
        return nn.Parameter(values)

    def const(self, a):
        """A NumPy array (or scalar) for wxb, as the user writes it; torch's tensor of it."""
        if self.torch:
            return torch.as_tensor(np.asarray(a)) if not np.isscalar(a) else float(a)
        return a

    def cat(self, xs, dim):
        return torch.cat(xs, dim) if self.torch else wxb.cat(xs, dim)

    def stack(self, xs, dim):
        return torch.stack(xs, dim) if self.torch else wxb.stack(xs, dim)

    def ufunc(self, name, *args):
        """NumPy's ufunc on wxb's tensors (through __array_ufunc__); torch's function."""
        return getattr(torch if self.torch else np, name)(*args)

    def where(self, c, a, b):
        return torch.where(c, a, b) if self.torch else wxb.where(c, a, b)


# -- element-wise steps: (x, L, c) -> same shape (B, H); c holds the draw's constants ------
def _steps():
    """Left out: steps whose kinks sit where exact ties are likely (a straight-through
    round, a clamp at x.mean() − c): there one library's last-bit rounding lands on the
    other side of the kink, a gradient of another branch, not a defect."""
    s = {}
    s["scalar_mul"] = lambda x, L, c: x * L.const(np.float64(c["s"]))
    s["scalar_rmul"] = lambda x, L, c: L.const(np.float64(c["s"])) * x
    s["scalar_rsub"] = lambda x, L, c: L.const(np.float64(c["s"])) - x
    s["py_rdiv"] = lambda x, L, c: 1.5 / (1.0 + x * x)
    s["array_add"] = lambda x, L, c: x + L.const(c["v"])
    s["array_rsub"] = lambda x, L, c: L.const(c["v"]) - x
    s["array_rmul"] = lambda x, L, c: L.const(c["v"]) * x
    s["array_div"] = lambda x, L, c: x / L.const(c["pos"])
    s["array_rdiv"] = lambda x, L, c: L.const(c["pos"]) / (x * x + 1.0)
    s["col_array"] = lambda x, L, c: x * L.const(c["v"][:, None].T)
    s["square"] = lambda x, L, c: x**2 * 0.5
    s["cube"] = lambda x, L, c: (x * 0.5) ** 3
    s["rpow"] = lambda x, L, c: 1.5 ** (x * 0.5)
    s["sqrt_pow"] = lambda x, L, c: (x * x + 1.0) ** 0.5
    s["abs"] = lambda x, L, c: abs(x)
    s["neg"] = lambda x, L, c: -x + 0.25
    s["matmul_right"] = lambda x, L, c: x @ L.const(c["M"])
    s["matmul_left"] = lambda x, L, c: (L.const(c["M"]) @ x.T).T
    s["matmul_vec"] = lambda x, L, c: x * (x @ L.const(c["v"]))[:, None]
    s["where_pos"] = lambda x, L, c: L.where(x > 0, x, x * 0.1)
    s["where_mask"] = lambda x, L, c: L.where(L.const(c["mask"]), x, -x)
    s["clamp"] = lambda x, L, c: x.clamp(-0.7, 0.9)
    s["clamp_min"] = lambda x, L, c: x.clamp(min=-0.3)
    s["clamp_max"] = lambda x, L, c: x.clamp(max=0.4)
    s["max_keep"] = lambda x, L, c: x - x.max(dim=1, keepdim=True).values
    s["max_index0"] = lambda x, L, c: x - x.max(1)[0].unsqueeze(1)
    s["min_batch"] = lambda x, L, c: x - x.min(dim=0, keepdim=True)[0]
    s["mean_keep"] = lambda x, L, c: x - x.mean(1, keepdim=True)
    s["sum_batch"] = lambda x, L, c: x * x.sum(dim=0, keepdim=True) * 0.1
    s["std_keep"] = lambda x, L, c: x / (x.std(dim=1, keepdim=True) + 1.0)
    s["sum_last"] = lambda x, L, c: x.sum(-1, keepdim=True) * x * 0.2
    s["amax"] = lambda x, L, c: x - x.amax(1, keepdim=True)
    s["cols_int"] = lambda x, L, c: x[:, L.const(c["idx"])]
    s["rows_perm"] = lambda x, L, c: x[L.const(c["rows"])]
    s["steps"] = lambda x, L, c: L.cat([x[:, ::2], x[:, 1::2]], 1)
    s["steps_rev"] = lambda x, L, c: L.cat([x[:, 3:], x[:, :3] * 2.0], 1)
    s["mask_cols"] = lambda x, L, c: L.cat([x[:, L.const(c["mask"])], x[:, L.const(~c["mask"])]], 1)
    s["last_col"] = lambda x, L, c: x[:, -1:] * x
    s["transpose"] = lambda x, L, c: (x.T * L.const(c["v"][:, None])).T
    s["reshape"] = lambda x, L, c: x.reshape(-1, 2, H // 2).transpose(1, 2).reshape(-1, H)
    s["view_flatten"] = lambda x, L, c: (x.view(-1, 3, 2) * L.const(c["v"].reshape(3, 2))).flatten(
        1
    )
    s["unsqueeze"] = lambda x, L, c: x.unsqueeze(1).squeeze(1) + x.unsqueeze(0)[0]
    s["stack_sum"] = lambda x, L, c: L.stack([x, x * x], 1).sum(1)
    s["stack_max"] = lambda x, L, c: L.stack([x, -x * 0.5], 0).max(0)[0]
    s["gram"] = lambda x, L, c: x @ (x.T @ x) * 0.1
    s["batch_mix"] = lambda x, L, c: L.const(np.ones((len(c["rows"]), len(c["rows"])))) @ x * 0.2
    s["cat_array"] = lambda x, L, c: L.cat([x, L.const(np.ones((len(c["rows"]), 2)))], 1)[:, 1:-1]
    s["neg_index"] = lambda x, L, c: x[:, L.const(np.array([-1, 0, -2, 1, 2, -3]))]
    s["none_index"] = lambda x, L, c: (x[..., None] * x[:, None, :]).sum(1) * 0.2
    s["row_mask"] = lambda x, L, c: L.cat(
        [x[L.const(c["rows"] % 2 == 0)], x[L.const(c["rows"] % 2 == 1)]], 0
    )
    s["sum_all"] = lambda x, L, c: x * x.sum() * 0.05
    s["max_all"] = lambda x, L, c: x - x.max()
    s["mean_tuple"] = lambda x, L, c: x - x.mean(dim=(0, 1), keepdim=True)
    s["expand"] = lambda x, L, c: x * x[:, :1].expand(-1, H)
    s["repeat"] = lambda x, L, c: x[:, :3].repeat(1, 2) + x
    s["flip"] = lambda x, L, c: x.flip(1) * 0.5 + x
    s["permute3"] = lambda x, L, c: x.reshape(-1, 3, 2).permute(0, 2, 1).reshape(-1, H)
    s["int_scalar"] = lambda x, L, c: x * x[:, np.int64(2)].unsqueeze(1)
    s["ufunc_exp"] = lambda x, L, c: L.ufunc("exp", x * 0.3)
    s["ufunc_abs"] = lambda x, L, c: L.ufunc("abs", x)
    s["ufunc_remainder"] = lambda x, L, c: L.ufunc("remainder", x, L.const(np.float64(1.7)))
    s["ufunc_sqrt"] = lambda x, L, c: L.ufunc("sqrt", x * x + 1.0)
    s["ufunc_maximum"] = lambda x, L, c: L.ufunc("maximum", x, x * x - 0.5)
    s["ufunc_matmul"] = lambda x, L, c: L.ufunc("matmul", x, L.const(c["M"]))
    s["ufunc_add_rev"] = lambda x, L, c: L.ufunc("add", L.const(c["v"]), x)
    s["array_pow"] = lambda x, L, c: (x * x + 1.0) ** L.const(c["pos"])
    s["array0_rpow"] = lambda x, L, c: L.const(np.array(1.5)) ** (x * 0.5)
    s["mod"] = lambda x, L, c: x % 1.3 + x
    s["pair_index"] = lambda x, L, c: (
        x * x[L.const(np.arange(len(c["rows"]))), L.const(c["rows"] % H)][:, None]
    )
    s["index_2d"] = lambda x, L, c: x[:, L.const(c["idx"].reshape(2, 3))].sum(1).repeat(1, 2)
    s["mask_2d_sum"] = lambda x, L, c: x + x[L.const(c["mask2"])].sum()
    s["gather_argmax"] = lambda x, L, c: x - x.gather(1, x.argmax(1, keepdim=True))
    s["sum_unsq"] = lambda x, L, c: x - x.sum(dim=1)[:, None] * 0.1
    s["std0"] = lambda x, L, c: x / (x.std(0) + 1.0)
    s["var_c0"] = lambda x, L, c: x * x.var(1, keepdim=True, unbiased=False)
    s["norm_keep"] = lambda x, L, c: x / (x.norm(dim=1, keepdim=True) + 1.0)
    s["softmax"] = lambda x, L, c: x.softmax(1) + x.log_softmax(dim=-1) * 0.1
    s["prod_keep"] = lambda x, L, c: x.prod(1, keepdim=True) * 0.1 + x
    s["cumsum"] = lambda x, L, c: x.cumsum(1) * 0.3
    s["where_scalar"] = lambda x, L, c: L.where(x > 0.1, x, 0.0)
    s["clamp_twice"] = lambda x, L, c: x.clamp(-0.5, 0.5).clamp(min=-0.5, max=0.5)
    s["relu_clamp0"] = lambda x, L, c: x.relu().clamp(min=0.0) + x.relu().clamp(max=0.0)
    s["abs_zero"] = lambda x, L, c: abs(x.relu()) + (x.relu() ** 2) ** 0.5
    s["maximum_tie"] = lambda x, L, c: x.relu().maximum(x.relu() * 1.0) + x.minimum(x)
    s["relu_m"] = lambda x, L, c: x.relu()
    s["tanh_m"] = lambda x, L, c: x.tanh()
    s["sigmoid_m"] = lambda x, L, c: x.sigmoid()
    return s


# in-place changes of computed tensors: torch records them; wxb must give its numbers
def _inplace_ok():
    s = {}

    def setitem_col(x, L, c):
        y = x * 1.0
        y[:, 0] = 0.0
        return y

    def iadd_array(x, L, c):
        y = x + 0.0
        y += L.const(c["v"])
        return y

    def mul_slice(x, L, c):
        y = x * 2.0
        y[:, 1:3] *= 3.0
        return y

    def clamp_(x, L, c):
        y = x * 1.5
        y.clamp_(-1.0, 1.0)
        return y

    def relu_(x, L, c):
        y = x - 0.1
        y.relu_()
        return y + x

    def setitem_tensor(x, L, c):
        y = x * 1.0
        y[:, L.const(np.array([0, 2, 4]))] = x[:, 3:] * 2.0
        return y

    def mask_iadd(x, L, c):
        y = x * 1.0
        y[L.const(c["mask2"])] += 1.0
        return y * x

    def transposed_add_(x, L, c):
        y = x * 1.0
        y.T.add_(L.const(c["v"][:, None]))
        return y * x

    def copy_col(x, L, c):
        y = x * 2.0
        y[:, 0] = y[:, 1]
        return y

    def input_mul_(x, L, c):
        x.mul_(2.0)
        return x

    def input_setitem(x, L, c):
        x[:, 0] = 0.0
        return x * 1.5

    def input_view_add(x, L, c):
        x.T[1] += 1.0
        return x

    def input_sigmoid_(x, L, c):
        return x.sigmoid_() * 2.0

    def detached_zero_(x, L, c):
        y = x.detach()
        y[:, 1] = 0.0
        return x + 1.0

    def data_mul(x, L, c):
        if L.torch:
            x.data.mul_(2.0)
        else:
            x.data *= 2.0
        return x * 1.0

    def mask_fill(x, L, c):
        y = x * 1.0
        y[:, L.const(c["mask"])] = 0.5
        return y

    def view_mul(x, L, c):
        y = x + 1.0
        y.T[2].mul_(2.0)
        return y

    for f in (setitem_col, iadd_array, mul_slice, clamp_, relu_, mask_fill, view_mul,
              setitem_tensor, mask_iadd, transposed_add_, copy_col, input_mul_, input_setitem,
              input_view_add, input_sigmoid_, detached_zero_, data_mul):  # fmt: skip
        s[f.__name__] = f
    return s


# in-place changes of a tensor a later backward reads: torch refuses them at backward
def _inplace_refused():
    s = {}

    def exp_add_(x, L, c):
        y = x.exp()
        y.add_(1.0)
        return y

    def sigmoid_set(x, L, c):
        y = x.sigmoid()
        y[:, 0] = 0.0
        return y

    def tanh_imul(x, L, c):
        y = x.tanh()
        y *= 2.0
        return y

    def input_changed(x, L, c):
        y = x * 1.0
        z = y * y
        y.mul_(2.0)
        return z + y

    for f in (exp_add_, sigmoid_set, tanh_imul, input_changed):
        s[f.__name__] = f
    return s


STEPS = _steps()
INPLACE_OK = _inplace_ok()
INPLACE_REFUSED = _inplace_refused()
KINDS = ("steps", "steps", "inplace", "linear_act", "param_use", "tied", "plist", "mlist",
         "mdict", "frozen", "detach", "buffer", "norm", "shared")  # fmt: skip


def draw_consts(rng, B: int) -> dict:
    mask = rng.random(H) < 0.5
    mask[0], mask[1] = True, False  # neither empty nor full
    return {
        "s": float(rng.uniform(-2, 2)),
        "v": rng.normal(size=H),
        "pos": rng.uniform(0.5, 2.0, size=H),
        "M": rng.normal(size=(H, H)) / np.sqrt(H),
        "mask": mask,
        "idx": rng.integers(0, H, size=H),
        "rows": rng.permutation(B),
        "mask2": rng.random((B, H)) < 0.5,
    }


def draw_spec(rng, B: int, refused: bool) -> list[tuple]:
    """The blocks of one model: (kind, options) each, drawn once for both libraries."""
    spec = []
    for _ in range(int(rng.integers(2, 6))):
        kind = KINDS[int(rng.integers(len(KINDS)))]
        opts = {"consts": draw_consts(rng, B)}
        if kind == "steps":
            names = sorted(STEPS)
            opts["steps"] = [names[int(i)] for i in rng.integers(len(names), size=3)]
        elif kind == "inplace":
            names = sorted(INPLACE_OK)
            opts["step"] = names[int(rng.integers(len(names)))]
        elif kind == "norm":
            opts["which"] = "batch" if rng.random() < 0.5 else "layer"
        elif kind in ("linear_act", "mlist"):
            opts["act"] = ["relu", "tanh", "sigmoid"][int(rng.integers(3))]
        spec.append((kind, opts))
    if refused:
        names = sorted(INPLACE_REFUSED)
        where = int(rng.integers(len(spec) + 1))
        step = names[int(rng.integers(len(names)))]
        spec.insert(where, ("refused", {"consts": draw_consts(rng, B), "step": step}))
    return spec


def act(x, name):
    return getattr(x, name)()


def build(L: Lib, spec, n_in: int, n_out: int):
    """The model of ``spec`` in library L: input layer, the blocks, a head."""

    class Block(L.Module):
        def __init__(self, kind, opts):
            super().__init__()
            self.kind, self.opts, self.c = kind, opts, opts["consts"]
            if kind == "linear_act":
                self.lin = L.linear(H, H)
            elif kind == "param_use":
                self.scale = L.parameter(np.ones(H))
                self.shift = L.parameter(np.zeros(()))
            elif kind == "tied":
                self.enc = L.linear(H, 4)
                self.dec_bias = L.parameter(np.zeros(H))
            elif kind == "plist":
                self.ps = L.ParameterList([L.parameter(np.ones(H)) for _ in range(2)])
            elif kind == "mlist":
                self.layers = L.ModuleList([L.linear(H, H), L.linear(H, H, bias=False)])
            elif kind == "mdict":
                self.d = L.ModuleDict({"value": L.linear(H, H), "gate": L.linear(H, H)})
            elif kind == "frozen":
                self.lin = L.linear(H, H)
                self.lin.requires_grad_(False)
            elif kind == "detach":
                self.lin = L.linear(H, H)
            elif kind == "buffer":
                self.register_buffer("w", L.const(np.asarray(opts["consts"]["pos"])))
            elif kind == "norm":
                self.norm = L.batchnorm(H) if opts["which"] == "batch" else L.layernorm(H)
            elif kind == "shared":
                self.a = L.linear(H, H)
                self.b = L.linear(H, H, bias=False)
                self.b.weight = self.a.weight  # one Parameter in two layers

        def forward(self, x):
            k, c = self.kind, self.c
            if k == "steps":
                for name in self.opts["steps"]:
                    x = STEPS[name](x, L, c)
                return x
            if k == "inplace":
                return INPLACE_OK[self.opts["step"]](x, L, c)
            if k == "refused":
                return INPLACE_REFUSED[self.opts["step"]](x, L, c)
            if k == "linear_act":
                return act(self.lin(x), self.opts["act"]) + x
            if k == "param_use":
                return x * self.scale + self.shift * self.scale.sum() + self.scale * 0.1
            if k == "tied":
                h = self.enc(x).tanh()
                return L.F.linear(h, self.enc.weight.t(), self.dec_bias) + h @ self.enc.weight
            if k == "plist":
                for p in self.ps:
                    x = x * p + p * 0.5
                return x
            if k == "mlist":
                for layer in self.layers:
                    x = act(layer(x), self.opts["act"])
                return x
            if k == "mdict":
                return self.d["value"](x) * self.d["gate"](x).sigmoid()
            if k == "frozen":
                return self.lin(x).relu() + x
            if k == "detach":
                return self.lin(x.detach()) + x
            if k == "buffer":
                return x * self.w
            if k == "norm":
                return self.norm(x)
            if k == "shared":
                return self.b(self.a(x).tanh())
            raise AssertionError(k)

    class Net(L.Module):
        def __init__(self):
            super().__init__()
            self.inp = L.linear(n_in, H)
            self.blocks = L.ModuleList([Block(k, o) for k, o in spec])
            self.head = L.linear(H, n_out)

        def forward(self, x):
            x = self.inp(x)
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    return Net()


def copy_into_torch(model, tmodel):
    """wxb's state_dict gives a shared parameter once (documented), torch's under each name."""
    state = model.state_dict()
    assert [k for k in tmodel.state_dict() if k in state] == list(state)
    result = tmodel.load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=False
    )
    assert all(k.endswith(".b.weight") for k in result.missing_keys), result


def hand_loss(out, Y, L):
    return ((out - L.const(Y)) ** 2).mean() + (out * out).sum() * 0.01


# eps well above rounding: an adaptive step divides a gradient by its own size, so a
# gradient that is 0 but for rounding (a bias before BatchNorm) would step by ±lr
OPTIMIZERS = {
    "SGD": dict(momentum=0.9, nesterov=True),
    "SGD_plain": dict(),
    "Adam": dict(betas=(0.8, 0.95), eps=1e-3),
    "AdamW": dict(eps=1e-3),
    "RMSprop": dict(momentum=0.5, centered=True, eps=1e-3),
    "Adagrad": dict(eps=1e-3),
    "NAdam": dict(eps=1e-3),
    "RAdam": dict(eps=1e-3),
    "Adamax": dict(eps=1e-3),
    "Adadelta": dict(),
}


def make_opt(name, groups, lib):
    cls_name = name.split("_")[0]
    cls = getattr(torch.optim if lib == "torch" else wxb.optim, cls_name)
    lr = 1.0 if cls_name == "Adadelta" else 0.01
    return cls(groups, lr=lr, **OPTIMIZERS[name])


def group_params(model, split, lrs, decays):
    params = list(model.parameters())
    g0 = [p for p, s in zip(params, split, strict=True) if s]
    g1 = [p for p, s in zip(params, split, strict=True) if not s]
    groups = []
    for ps, lr, wd in zip((g0, g1), lrs, decays, strict=True):
        if ps:
            groups.append({"params": ps, "lr": lr, "weight_decay": wd})
    return groups


def close(a, b, what, msg, tol=1e-10, shadow=None):
    """``a`` as torch's ``b`` to ``tol`` of their scale; ``shadow``: a torch run whose
    gradients were shifted far above rounding, whose distance from ``b`` is allowed too."""
    a = np.asarray(a, dtype=np.float64)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, msg(f"{what}: shape {a.shape} vs torch {b.shape}")
    finite = np.isfinite(b)  # (a draw may overflow: inf and NaN where torch's are)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    assert np.array_equal(np.isfinite(a), finite), msg(f"{what}: {a} vs {b}")
    assert same[~finite].all(), msg(f"{what}: {a} vs {b}")
    spread = 0.0
    if shadow is not None:
        spread = np.abs(shadow.detach().numpy() - b)[finite]
    a, b = a[finite], b[finite]
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    err = np.abs(a - b) - spread
    worst = float(np.max(err, initial=0.0))
    assert worst <= tol * scale, msg(f"{what}: off by {worst:.3g} (scale {scale:.3g})")


def names_of(spec):
    return [(k, o.get("steps") or o.get("step") or o.get("which") or o.get("act")) for k, o in spec]


def _draw_case(rng):
    B, n_in, n_out = int(rng.integers(3, 7)), int(rng.integers(2, 6)), int(rng.integers(1, 4))
    refused = bool(rng.random() < 0.25)
    spec = draw_spec(rng, B, refused)
    X = rng.normal(size=(B, n_in))
    Y = rng.normal(size=(B, n_out))
    return B, n_in, n_out, spec, X, Y


def _forward_backward(model, X, Y, L):
    x = X if not L.torch else torch.from_numpy(X)
    out = model(x)
    loss = hand_loss(out, Y, L)
    loss.backward()
    return out, loss


@pytest.mark.parametrize("draw", range(12))
def test_generated_models_against_torch(seeded, draw, torch_default_dtype):
    rng = seeded.rng
    for _ in range(draw):  # each draw its own case from the one seed
        rng = np.random.default_rng(rng.integers(2**63))
    _, n_in, n_out, spec, X, Y = _draw_case(rng)
    kinds = names_of(spec)

    def msg(what):
        return seeded.msg(f"draw {draw}, blocks {kinds}: {what}")

    W, T = Lib(False), Lib(True)
    model, tmodel = build(W, spec, n_in, n_out), build(T, spec, n_in, n_out)
    copy_into_torch(model, tmodel)
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in tmodel.named_parameters()]
    assert [n for n, _ in model.named_buffers()] == [n for n, _ in tmodel.named_buffers()]

    # the first forward and backward: torch refuses, so does wxb; else the same numbers
    try:
        tout, tloss = _forward_backward(tmodel, X, Y, T)
        torch_error = None
    except RuntimeError as exc:
        torch_error = exc
    if torch_error is not None:
        with pytest.raises(Exception) as info:  # (wxb's own error class)
            _forward_backward(model, X, Y, W)
        assert "\n" not in str(info.value).strip(), msg(f"not one line: {info.value}")
        return
    out, loss = _forward_backward(model, X, Y, W)
    close(out.data, tout, "output", msg)
    close(loss.item(), tloss, "loss", msg)
    tparams = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        tp = tparams[name]
        if tp.grad is None:
            assert p.grad is None or not np.any(p.grad), msg(f"{name}: a gradient torch has not")
        else:
            assert p.grad is not None, msg(f"{name}: no gradient, torch's is {tp.grad}")
            close(p.grad, tp.grad, f"{name}.grad", msg)

    # steps of a random optimiser, two groups of their own lr and weight decay
    name = sorted(OPTIMIZERS)[int(rng.integers(len(OPTIMIZERS)))]
    split = rng.random(len(list(model.parameters()))) < 0.5
    lrs = (0.01 * rng.uniform(0.5, 2), 0.01 * rng.uniform(0.5, 2))
    if name == "Adadelta":
        lrs = (rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5))
    decays = (0.0, float(rng.uniform(0, 0.1)))
    # A second torch run whose gradients are shifted by noise far above rounding (1e-12 of
    # the step's largest entry): where a parameter's true gradient is 0 (a bias whose
    # every path cancels), Adam's family steps by lr·rounding/ε, so two correct libraries
    # part there by as much as this run parts from torch's (as test_gen_hunt46's)
    shadow = copy.deepcopy(tmodel)
    noise = np.random.default_rng(rng.integers(2**63))
    opt = make_opt(name, group_params(model, split, lrs, decays), "wxb")
    topt = make_opt(name, group_params(tmodel, split, lrs, decays), "torch")
    sopt = make_opt(name, group_params(shadow, split, lrs, decays), "torch")
    sparams = dict(shadow.named_parameters())
    for step in range(3):
        if step == 2:
            model.eval(), tmodel.eval(), shadow.eval()
        opt.zero_grad(), topt.zero_grad(), sopt.zero_grad()
        out, _ = _forward_backward(model, X, Y, W)
        tout, _ = _forward_backward(tmodel, X, Y, T)
        _forward_backward(shadow, X, Y, T)
        grads = [q.grad for q in shadow.parameters() if q.grad is not None]
        size = 1e-12 * max([float(g.abs().max()) for g in grads], default=0.0)
        for g in grads:
            g += torch.from_numpy(noise.normal(scale=size, size=tuple(g.shape)))
        close(out.data, tout, f"{name} step {step}: output", msg)
        opt.step(), topt.step(), sopt.step()
        for pname, p in model.named_parameters():
            what = f"{name} step {step}: {pname}"
            close(p.data, tparams[pname], what, msg, shadow=sparams[pname])
    tbuffers = dict(tmodel.named_buffers())
    for bname, b in model.named_buffers():
        close(np.asarray(b, dtype=np.float64), tbuffers[bname].double(), f"buffer {bname}", msg)

    # the state into a fresh model of each library: the same eval outputs; ties kept
    model.eval(), tmodel.eval()
    with wxb.no_grad():
        want = model(X).data
    fresh = build(W, spec, n_in, n_out)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    with wxb.no_grad():
        close(fresh(X).data, torch.from_numpy(want), "fresh model after load_state_dict", msg)
    for i, (kind, _) in enumerate(spec):
        if kind == "shared":
            assert fresh.blocks[i].b.weight is fresh.blocks[i].a.weight, msg("tie lost in load")
    tfresh = build(T, spec, n_in, n_out)
    copy_into_torch(model, tfresh)
    tfresh.eval()
    with torch.no_grad():
        close(want, tfresh(torch.from_numpy(X)), "torch model from wxb's state_dict", msg)


def test_generated_state_files_and_onnx(seeded, tmp_path):
    """The state through wxb.save/wxb.load (names as torch's, read by safetensors' torch
    reader into torch's model), and ONNX export refused in one line for a module of one's
    own."""
    from safetensors.torch import load_file

    rng = seeded.rng
    _, n_in, n_out, spec, X, _ = _draw_case(rng)
    spec = [s for s in spec if s[0] != "refused"]
    if rng.random() < 0.5:  # blocks that only chain layers: a model ONNX export takes
        spec = [(k, o) for k, o in spec if k in ("mlist", "norm")] or [
            ("mlist", {"consts": {}, "act": "tanh"})
        ]
    W, T = Lib(False), Lib(True)
    model, tmodel = build(W, spec, n_in, n_out), build(T, spec, n_in, n_out)
    model.eval(), tmodel.eval()
    path = wxb.save(model.state_dict(), tmp_path / "state.safetensors")
    back = wxb.load(path)
    state = model.state_dict()
    assert list(back) == list(state), seeded.msg("names changed through the file")
    for k in state:
        np.testing.assert_array_equal(np.asarray(back[k]), np.asarray(state[k]), seeded.msg(k))
    fresh = build(W, spec, n_in, n_out)
    fresh.load_state_dict(back)
    fresh.eval()
    with wxb.no_grad():
        np.testing.assert_array_equal(fresh(X).data, model(X).data, seeded.msg("after wxb.load"))
    tstate = load_file(str(path))
    assert set(tstate) == set(state), seeded.msg("the file's names are not state_dict's")
    missing = tmodel.load_state_dict(tstate, strict=False).missing_keys
    assert all(k.endswith(".b.weight") for k in missing), seeded.msg(f"missing {missing}")
    with torch.no_grad():
        close(model(X).data, tmodel(torch.from_numpy(X)), "torch from the file", seeded.msg)
    # a forward of blocks that only chain layers (ModuleList, norm) exports; others refused
    export_checked(model, X, tmp_path / "m.onnx", "the generated model", seeded.msg)


def export_checked(model, X, path, what, msg):
    """ONNX export refused in one line, writing nothing, or run by onnxruntime to
    predict's numbers."""
    import onnxruntime as ort

    try:
        wxb.onnx.export(model, path)
    except ConfigError as exc:
        assert "\n" not in str(exc).strip(), msg(f"{what}: not one line: {exc}")
        assert not path.exists(), msg(f"{what}: refused, yet written")
        return
    session = ort.InferenceSession(str(path))
    got = session.run(None, {session.get_inputs()[0].name: X})[0]
    close(got, torch.from_numpy(model.predict(X)), f"onnxruntime of {what}", msg)


# steps whose constants are sized for B rows
BATCH_BOUND = {"rows_perm", "batch_mix", "cat_array", "row_mask", "pair_index", "mask_2d_sum",
               "mask_iadd"}  # fmt: skip


@pytest.mark.parametrize("draw", range(4))
def test_generated_models_fit_against_torch(seeded, draw, torch_default_dtype):
    """wxb.fit with a loss of one's own and an optimiser of two groups, against torch's
    loop over the same batches in order."""
    rng = seeded.rng
    for _ in range(draw):
        rng = np.random.default_rng(rng.integers(2**63))
    B, n_in, n_out, spec, X, Y = _draw_case(rng)
    spec = [
        (k, o)
        for k, o in spec
        if k != "refused" and not BATCH_BOUND & {*o.get("steps", ()), o.get("step")}
    ]
    kinds = names_of(spec)

    def msg(what):
        return seeded.msg(f"draw {draw}, blocks {kinds}: {what}")

    batches = int(rng.integers(1, 4))
    X = rng.normal(size=(B * batches, n_in))
    Y = rng.normal(size=(B * batches, n_out))
    W, T = Lib(False), Lib(True)
    model, tmodel = build(W, spec, n_in, n_out), build(T, spec, n_in, n_out)
    copy_into_torch(model, tmodel)
    name = sorted(OPTIMIZERS)[int(rng.integers(len(OPTIMIZERS)))]
    split = rng.random(len(list(model.parameters()))) < 0.5
    lrs = (0.01 * rng.uniform(0.5, 2), 0.01 * rng.uniform(0.5, 2))
    if name == "Adadelta":
        lrs = (rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5))
    decays = (0.0, float(rng.uniform(0, 0.1)))
    opt = make_opt(name, group_params(model, split, lrs, decays), "wxb")
    topt = make_opt(name, group_params(tmodel, split, lrs, decays), "torch")
    epochs = 2
    try:  # an in-place change torch refuses at backward (a block's input): so does fit
        _forward_backward(copy.deepcopy(tmodel), X[:B], Y[:B], T)
    except RuntimeError:
        with pytest.raises(TrainingError):
            wxb.fit(model, X, Y, loss=lambda out, y: hand_loss(out, y, W), optimizer=opt,
                    epochs=epochs, batch_size=B, shuffle=False, verbose=False)  # fmt: skip
        return
    tmodel.train()
    losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(X), B):
            topt.zero_grad()
            out = tmodel(torch.from_numpy(X[start : start + B]))
            loss = hand_loss(out, Y[start : start + B], T)
            loss.backward()
            topt.step()
            total += loss.item()
        losses.append(total / batches)
    if not np.all(np.isfinite(losses)):  # a draw that diverges: fit stops, as documented
        with pytest.raises(TrainingError):
            wxb.fit(model, X, Y, loss=lambda out, y: hand_loss(out, y, W), optimizer=opt,
                    epochs=epochs, batch_size=B, shuffle=False, verbose=False)  # fmt: skip
        return
    history = wxb.fit(
        model, X, Y, loss=lambda out, y: hand_loss(out, y, W), optimizer=opt, epochs=epochs,
        batch_size=B, shuffle=False, verbose=False,
    )  # fmt: skip
    close(history["loss"], losses, "fit's per-epoch losses", msg)
    tparams = dict(tmodel.named_parameters())
    for pname, p in model.named_parameters():
        close(p.data, tparams[pname], f"{name}: {pname} after fit", msg)
    tbuffers = dict(tmodel.named_buffers())
    for bname, b in model.named_buffers():
        close(np.asarray(b, dtype=np.float64), tbuffers[bname].double(), f"buffer {bname}", msg)


# -- defects the generator led to -----------------------------------------------------------
IN_PLACE_BETWEEN = ("iadd", "mul_", "relu_", "setitem", "clamp_", "view_add", "data", "output")


class _ChangedBetween(nn.Module):
    """fc2(fc1(x)), with the layer's result changed in place before it is passed on."""

    def __init__(self, how: str, rng) -> None:
        super().__init__()
        self.how = how
        self.fc1 = nn.Linear(4, 5, dtype="float64")
        self.fc2 = nn.Linear(5, 2, dtype="float64")
        self.shift = rng.normal(size=5)

    def forward(self, x):
        h = self.fc1(x)
        if self.how == "iadd":
            h += self.shift  # a NumPy array, in place
        elif self.how == "mul_":
            h.mul_(3.0)
        elif self.how == "relu_":
            h.relu_()
        elif self.how == "setitem":
            h[:, 0] = 0.0
        elif self.how == "clamp_":
            h.clamp_(-0.1, 0.1)
        elif self.how == "view_add":
            h.T[1] += 1.0
        elif self.how == "data":
            h.data[:, 1] = 0.0
        out = self.fc2(h)
        if self.how == "output":
            out *= 2.0
        return out


@pytest.mark.parametrize("how", IN_PLACE_BETWEEN)
def test_forward_changing_a_layers_result_in_place_is_no_plain_chain(seeded, tmp_path, how):
    """A forward of one's own that calls fc1 then fc2 was taken for the plain chain
    fc2(fc1(x)) when it changed fc1's result in place before handing it on (``h += b``,
    ``h.relu_()``, ``h[:, 0] = 0``, ``h.data[…] = …``, or fc2's before returning it): the
    chain passes each result on by identity, and the in-place change keeps the tensor.
    ONNX export wrote the graph without the change, which onnxruntime ran to other
    numbers, with no error. Now such a forward is no chain: export refuses it in one line."""
    model = _ChangedBetween(how, seeded.rng)
    X = seeded.rng.normal(size=(5, 4))
    want = model.predict(X)
    export_checked(model, X, tmp_path / "m.onnx", how, seeded.msg)
    try:
        twin = wxb.interop.to_torch(model)
    except ConfigError as exc:
        assert "\n" not in str(exc).strip()
    else:
        with torch.no_grad():
            close(want, twin.eval()(torch.from_numpy(X)), f"to_torch of {how}", seeded.msg)
