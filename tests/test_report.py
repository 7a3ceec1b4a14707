"""wxb report: the page's numbers are explain's and summary's, user text cannot break it,
nothing is fetched, and bad input gives one line and exit status 2."""

import html.parser
import json
import re

import numpy as np
import pytest

import wxb
from wxb.cli import main
from wxb.describe import summary
from wxb.errors import DataError
from wxb.nn import Dense, Module, ModuleList, Sequential, Sigmoid, Standardize, Tanh
from wxb.reporting import dequantised, report_html


class _Page(html.parser.HTMLParser):
    """The parts of a page the tests read: tags, attributes, table cells, the JSON."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.cells: list[str] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._cell: list[str] | None = None
        self._script: list[str] | None = None
        self._summary = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table" and attrs.get("class") == "summary":
            self._summary = True
        if tag == "td" and self._summary:
            self._cell = []
        if tag in ("script", "style"):
            self._script = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None
        if tag == "table":
            self._summary = False
        if tag in ("script", "style") and self._script is not None:
            (self.scripts if tag == "script" else self.styles).append("".join(self._script))
            self._script = None

    def handle_data(self, data):
        for part in (self._cell, self._script):
            if part is not None:
                part.append(data)

    def data(self) -> dict:
        """The page's JSON block (the one script with id wxb-data)."""
        scripts = [attrs for tag, attrs in self.tags if tag == "script"]
        (index,) = [i for i, attrs in enumerate(scripts) if attrs.get("id") == "wxb-data"]
        return json.loads(self.scripts[index])


def small_model(rng, n_in, hidden, classes, activation=Tanh):
    X = rng.normal(size=(40, n_in)) * rng.uniform(0.5, 3.0, size=n_in)
    seed = int(rng.integers(2**31))
    model = Sequential(
        Standardize.fit(X),
        Dense(n_in, hidden, seed=seed, dtype="float64", name="hidden1"),
        activation(name="act1"),
        Dense(hidden, classes, seed=seed + 1, dtype="float64", name="output"),
    )
    return model, X, rng.integers(0, classes, size=len(X))


def latex_blocks(markdown: str) -> list[str]:
    return re.findall(r"^\$\$\n(.*?)\n\$\$$", markdown, flags=re.S | re.M)


def test_the_numbers_on_the_page_are_explains_and_summarys(rng, seeded):
    n_in, classes = int(rng.integers(3, 9)), int(rng.integers(3, 6))
    model, X, y = small_model(rng, n_in, 128, classes)  # 128 = 2·64: blocks of 2 rows
    sample, batch = int(rng.integers(len(X))), int(rng.integers(1, 100))
    rate = float(rng.uniform(1e9, 1e11))
    page = _Page(report_html(model, None, X, y, sample=sample, batch_size=batch, gemm_rate=rate))
    data = page.data()

    walk = wxb.explain(
        model, X[sample : sample + 1], y[sample : sample + 1], "cross_entropy", sample_rows=None
    )
    steps = walk.steps
    assert [s["name"] for s in data["steps"]] == [s.name for s in steps], seeded.msg("names")
    markdown = wxb.explain(
        model,
        X[sample : sample + 1],
        y[sample : sample + 1],
        "cross_entropy",
        sample_rows=None,
        fmt="markdown",
    ).markdown()
    assert [s["latex"] for s in data["steps"]] == latex_blocks(markdown)
    for shown, step in zip(data["steps"], steps, strict=True):
        value = np.asarray(step.value, dtype=np.float64)
        msg = seeded.msg(step.name)
        if value.ndim == 0:
            assert shown["value"] == float(value), msg
            continue
        assert shown["shape"] == list(value.shape), msg
        assert shown["min"] == value.min() and shown["max"] == value.max(), msg
        assert shown["mean"] == pytest.approx(value.mean(), rel=1e-12, abs=1e-15), msg
        assert shown["norm"] == pytest.approx(np.sqrt((value**2).sum()), rel=1e-12), msg
        assert sum(shown["histogram"]["counts"]) == value.size, msg
        grid = dequantised(shown["grid"])
        if value.ndim == 1 or 1 in value.shape:  # a vector: laid out in rows, reading order
            if value.size == 128:  # rows of 16: a divisor of 128 near √128
                assert grid.shape == (8, 16), msg
            assert np.isnan(grid.ravel()[value.size :]).all(), msg
            grid, expected = grid.ravel()[: value.size], value.ravel()
        elif value.shape[0] == 128:  # 128×n: the means of pairs of rows
            expected = value.reshape(64, 2, -1).mean(axis=1)
        elif value.shape[1] == 128:  # m×128: of pairs of columns
            expected = value.reshape(value.shape[0], 64, 2).mean(axis=2)
        else:  # small enough to show every entry
            expected = value
        tolerance = np.abs(expected).max() / 127 / 2 * (1 + 1e-9)  # int8 against max |entry|
        np.testing.assert_allclose(grid, expected, rtol=0, atol=tolerance, err_msg=msg)

    table = summary(model, batch, rate)
    shown_rows = data["summary"]["rows"]
    assert [r["name"] for r in shown_rows] == [r.name for r in table.rows]
    for shown, row in zip(shown_rows, table.rows, strict=True):
        for key in ("parameters", "forward_flops", "training_flops", "activation_bytes"):
            assert shown[key] == getattr(row, key), seeded.msg(f"{row.name} {key}")
    # the table a person reads: each row's cells, as the terminal's summary formats them
    cells = [page.cells[i : i + 6] for i in range(0, len(page.cells), 6)]
    assert [c[2] for c in cells] == [f"{row.parameters:,}" for row in table.rows]
    assert [c[4] for c in cells] == [f"{row.training_flops:,}" for row in table.rows]
    floor = table.training_flops * batch / rate
    assert data["summary"]["rate_floor_s"] == pytest.approx(floor, rel=1e-12)


def test_user_text_cannot_break_the_page_and_nothing_is_fetched(rng):
    model, X, y = small_model(rng, 3, 5, 3)
    hostile = ["</script><b>x", "<img src=x onerror=alert(1)>", "a&b \u2028 '\""]
    model.info = {
        "task": "classification",
        "loss": "cross_entropy",
        "classes": hostile,
        "feature_names": ["<!--", "</style>", "]]>"],
        "target": "</title>",
    }
    text = report_html(model, None, X, y, sample=1, gemm_rate=1e10)
    page = _Page(text)
    assert page.data()["info"]["classes"] == hostile  # the names as they are, in the JSON
    tags = [tag for tag, _ in page.tags]
    assert "b" not in tags and "img" not in tags  # no name became markup
    assert tags.count("script") == 5  # errors, the JSON, KaTeX, Mermaid, the page's own
    assert tags.count("title") == 1
    for tag, attrs in page.tags:  # no address outside the file
        for name in ("src", "href"):
            assert not re.match(r"\s*(https?:)?//", attrs.get(name) or ""), (tag, attrs)
    for style in page.styles:  # fonts inlined: no stylesheet or font from elsewhere
        assert "@import" not in style
        assert re.findall(r"url\(\s*['\"]?(\w+):", style) == ["data"] * style.count("url(")


def test_big_layers_are_summarised_and_long_lists_fold(rng):
    classes = [f"class {i}" for i in range(30)]
    hidden = 300
    model = Sequential(
        *[
            layer
            for i in range(15)
            for layer in (Dense(20 if i == 0 else hidden, hidden, seed=i, name=f"d{i}"), Sigmoid())
        ],
        Dense(hidden, 30, seed=99, name="output"),
    )
    model.info = {"task": "classification", "loss": "cross_entropy", "classes": classes}
    X = rng.normal(size=(3, 20))
    text = report_html(model, None, X, rng.integers(0, 30, size=3), gemm_rate=1e10)
    data = _Page(text).data()
    assert len(data["steps"]) > 60
    for step in data["steps"]:
        if step["shape"]:
            assert step["grid"]["rows"] <= 32 and step["grid"]["cols"] <= 32
    assert "31 layers: show the table" in text  # the summary table folds
    assert "and 10 more classes" in text
    assert text.count("<details class='group'>") > 0  # middle layers fold


def fit_small(rng, hidden, seed, depth=1):
    X = rng.normal(size=(64, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    layers, width = [], 5
    for index in range(1, depth + 1):
        layers += [Dense(width, hidden, seed=seed + index, name=f"hidden{index}"), Tanh()]
        width = hidden
    model = Sequential(*layers, Dense(width, 2, seed=seed, name="output"))
    model.info = {"task": "classification", "loss": "cross_entropy", "classes": [0, 1]}
    history = wxb.fit(model, X, y, epochs=3, batch_size=16, seed=seed, diagnose=True, verbose=False)
    return model, history


def test_a_history_must_be_the_models_own(tmp_path, rng):
    seed = int(rng.integers(2**31))
    model, history = fit_small(rng, 6, seed)
    report_html(model, history, gemm_rate=1e10)  # its own: fine
    _, other_history = fit_small(rng, 6, seed, depth=2)
    with pytest.raises(DataError, match="a history of another model"):
        report_html(model, other_history, gemm_rate=1e10)
    _, rerun_history = fit_small(rng, 6, seed + 2)  # same layers, another run
    with pytest.raises(DataError, match="a history of another run"):
        report_html(model, rerun_history, gemm_rate=1e10)
    model.info["task"] = "regression"
    with pytest.raises(DataError, match="a history with accuracy, but the model is a regression"):
        report_html(model, history, gemm_rate=1e10)
    with pytest.raises(DataError, match="not a wxb history"):
        report_html(model, {"history": {"loss": ["x"]}}, gemm_rate=1e10)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A digits model (the default 512 hidden units, 2 epochs) with its history and
    diagnostics, and the page wxb train --report wrote."""
    folder = tmp_path_factory.mktemp("trained")
    code = main(
        [
            "train",
            "--epochs",
            "2",
            "--diagnose",
            "-q",
            "--history",
            str(folder / "h.json"),
            "-o",
            str(folder / "m.safetensors"),
            "--report",
            str(folder / "train.html"),
        ]
    )
    assert code == 0
    return folder


def test_report_command_shows_explains_sample_and_stays_small(trained, rng, capsys):
    sample = int(rng.integers(0, 1797))
    out_path = trained / "r.html"
    code, out, err = run_cli(
        capsys,
        "report",
        trained / "m.safetensors",
        "--history",
        trained / "h.json",
        "--sample",
        sample,
        "-o",
        out_path,
    )
    assert code == 0, err
    assert out.startswith(f"wrote {out_path}") and f"row {sample} of built-in digits" in out
    code, markdown, _ = run_cli(
        capsys, "explain", trained / "m.safetensors", "--sample", sample, "--format", "md"
    )
    data = _Page(out_path.read_text(encoding="utf-8")).data()
    assert [s["latex"] for s in data["steps"]] == latex_blocks(markdown)
    history = json.loads((trained / "h.json").read_text())
    assert data["history"]["figures"] == history["history"]
    assert data["diagnostics"] == history["diagnostics"]
    info = wxb.load(trained / "m.safetensors").info
    assert info["data"]["source"] == "built-in digits" and info["wxb_version"] == wxb.__version__
    # the default digits model with its history: under 5 MB, most of it the shared assets
    for page in (out_path, trained / "train.html"):
        assert page.stat().st_size < 5_000_000
    written = _Page((trained / "train.html").read_text(encoding="utf-8")).data()
    assert written["history"]["figures"] == history["history"] and written["steps"]


@pytest.mark.parametrize("case", ["foreign", "history", "unwritable", "onto model", "onto data"])
def test_bad_input_is_one_line_and_status_2(trained, tmp_path, capsys, case):
    model, out = trained / "m.safetensors", tmp_path / "r.html"
    out.write_text("an earlier report")
    args = [model, "--no-floor", "-o", out]
    if case == "foreign":  # a file that is not a model
        csv = tmp_path / "data.csv"
        csv.write_text("a,b\n1,2\n")
        args = [csv, "-o", out]
    elif case == "history":  # a history of another model
        other = Sequential(Dense(64, 3, seed=0, name="hidden1"), Dense(3, 10, name="output"))
        history = wxb.fit(
            other, np.zeros((8, 64)), np.arange(8), epochs=1, diagnose=True, verbose=False
        )
        (tmp_path / "h.json").write_text(history.to_json())
        args += ["--history", tmp_path / "h.json"]
    elif case == "unwritable":  # a folder that cannot be made: a file stands there
        (tmp_path / "file").write_text("x")
        args = [model, "--no-floor", "-o", tmp_path / "file" / "r.html"]
    elif case == "onto model":
        args = [model, "-o", model]
    else:
        args = [model, "--data", out, "-o", out]
    before = model.read_bytes()
    code, stdout, err = run_cli(capsys, "report", *args)
    assert code == 2 and stdout == ""
    assert err.startswith("wxb: error: ") and err.count("\n") == 1, err
    assert out.read_text() == "an earlier report"  # nothing already on disk is lost
    assert model.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_64_input_model_not_trained_on_digits_is_not_walked_through_digits(tmp_path, rng, capsys):
    """The built-in digits serve only a model trained on them: another model with 64
    inputs gets no walk-through from `wxb report`, and `wxb explain` asks for --data."""
    model = Sequential(Dense(64, 3, seed=int(rng.integers(1 << 30))))
    model.info = {"task": "classification", "loss": "cross_entropy", "classes": ["a", "b", "c"],
                  "data": {"source": "houses.csv", "rows": 100}}  # fmt: skip
    path = wxb.save(model, tmp_path / "m.safetensors")
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 0
    assert "walk-through: no rows (give --data)" in capsys.readouterr().out
    page = _Page((tmp_path / "r.html").read_text())
    assert not page.data().get("steps")
    assert main(["explain", str(path)]) == 2
    said = capsys.readouterr().err.strip().splitlines()
    assert len(said) == 1 and "name the rows to explain on" in said[0]


def test_a_step_with_no_finite_entry_is_said_and_the_rest_still_drawn(rng):
    model = Sequential(Dense(3, 4, seed=int(rng.integers(1 << 30))), Tanh(), Dense(4, 2))
    model[0].weight.data[...] = np.inf  # a diverged model: Z⁽¹⁾ is all ±inf or NaN
    X = rng.normal(size=(1, 3))
    page = report_html(model, X=X, y=rng.integers(0, 2, size=1), gemm_rate=1e10)
    steps = _Page(page).data()["steps"]
    assert any("histogram" not in step and step["nonfinite"] for step in steps)
    assert "no finite entry to count" in page
    histograms = re.findall(r"<svg class='chart histogram' data-step='(\d+)'>", page)
    assert [int(i) for i in histograms] == [i for i, s in enumerate(steps) if "histogram" in s]


def test_f_prime_figures_are_each_activations_own_when_names_repeat(rng):
    """Nested Sequentials name their layers alike (sigmoid1 twice): each A step's f′(Z)
    is its own layer's, σ′ = A(1 − A), computed here from the step's A."""
    seed = int(rng.integers(1 << 30))
    model = Sequential(
        Sequential(Dense(3, 5, seed=seed), Sigmoid()), Dense(5, 4, seed=seed + 1), Sigmoid(),
        Dense(4, 2, seed=seed + 2),
    ).double()  # fmt: skip
    X = rng.normal(size=(1, 3))
    steps = _Page(report_html(model, X=X, y=rng.integers(0, 2, 1), gemm_rate=1e10)).data()["steps"]
    shown = [s for s in steps if "fprime" in s]
    # each named by its path in the model, so each is found by its own name
    assert [s["name"] for s in shown] == ["sequential1.sigmoid1.A", "sigmoid1.A"]
    layers = wxb.nn.sequential.layers_in_order(model)
    x, want = X, []
    for layer in layers:
        x = layer(wxb.Tensor(x)).data
        if isinstance(layer, Sigmoid):
            want.append(float(np.mean(x * (1 - x))))
    np.testing.assert_allclose([s["fprime"]["mean"] for s in shown], want, rtol=1e-6)


def test_a_forward_applying_its_activations_itself_is_walked_through_with_each_f_prime(rng):
    # it was one step with no δ chain, and no f′(Z) figure
    n, h1, h2 = (int(v) for v in rng.integers(2, 9, size=3))
    F = wxb.nn.functional

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.out, self.fc2, self.fc1 = Dense(h2, 2), Dense(h1, h2), Dense(n, h1)

        def forward(self, x):
            return self.out(F.tanh(self.fc2(F.sigmoid(self.fc1(x)))))

    model = Net().double()
    X = rng.normal(size=(1, n))
    steps = _Page(report_html(model, X=X, y=rng.integers(0, 2, 1), floor=False)).data()["steps"]
    shown = [s for s in steps if "fprime" in s]
    assert [s["name"] for s in shown] == ["sigmoid().A", "tanh().A"]
    a1 = 1 / (1 + np.exp(-(X @ model.fc1.weight.data.T + model.fc1.bias.data)))
    a2 = np.tanh(a1 @ model.fc2.weight.data.T + model.fc2.bias.data)
    want = [np.mean(a1 * (1 - a1)), np.mean(1 - a2 * a2)]
    np.testing.assert_allclose([s["fprime"]["mean"] for s in shown], want, rtol=1e-9)


def test_a_regressor_without_info_is_walked_through_with_its_mse(rng):
    """A model with no task recorded (built in Python, never fitted) and several real
    outputs is walked through with explain's own default (MSE for real targets), not
    guessed into a classifier (the page showed a negative 'cross-entropy'), and the page
    says the task was not recorded."""
    n, h = int(rng.integers(2, 6)), int(rng.integers(3, 8))
    model = Sequential(Dense(n, h), Tanh(), Dense(h, 2)).to("float64")
    X, Y = rng.normal(size=(12, n)), rng.normal(size=(12, 2))
    sample = int(rng.integers(0, 12))
    text = report_html(model, None, X, Y, sample=sample, gemm_rate=1e10)
    page = _Page(text)
    loss = next(s for s in page.data()["steps"] if s["name"] == "loss")
    expected = 0.5 * float(((model.predict(X[sample : sample + 1]) - Y[sample]) ** 2).sum())
    assert loss["value"] == pytest.approx(expected, rel=1e-10)
    assert "not recorded" in text  # the info table's Task and Loss


def test_train_report_names_its_row_as_sample_counts_the_file(tmp_path, rng, capsys):
    """Rows without a target are dropped before the split: the walked-through test row is
    named by its place in the file (it was named by its place after the drop, so
    --sample with that number walked through another row)."""
    n = int(rng.integers(30, 50))
    X = rng.normal(size=(n, 3))
    labels = np.where(X[:, 0] > 0, "up", "down").astype(object)
    labels[rng.choice(n, size=int(rng.integers(3, 8)), replace=False)] = ""  # no target
    lines = ["a,b,c,label"] + [f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(X, labels, strict=True)]
    data = tmp_path / "t.csv"
    data.write_text("\n".join(lines) + "\n")
    model, page = tmp_path / "m.safetensors", tmp_path / "p.html"
    code, out, err = run_cli(
        capsys, "train", "--data", data, "--target", "label", "--epochs", "2", "-o", model,
        "--report", page,
    )  # fmt: skip
    assert code == 0, err
    row = int(re.search(r"walk-through: row (\d+) of", out).group(1))
    assert labels[row] != ""
    code, markdown, err = run_cli(
        capsys, "explain", model, "--data", data, "--sample", row, "--format", "md"
    )
    assert code == 0, err
    steps = _Page(page.read_text(encoding="utf-8")).data()["steps"]
    assert [s["latex"] for s in steps] == latex_blocks(markdown)


def test_a_softmax_headed_model_without_info_is_walked_through_as_eval_scores_it(rng):
    """No info, a Softmax last layer: the walk-through's loss is −log p[y] of the model's
    own probabilities (the page applied softmax twice, as explain and eval do not)."""
    from wxb.nn import Softmax

    n, k = int(rng.integers(2, 6)), int(rng.integers(3, 6))
    model = Sequential(Dense(n, k), Softmax()).to("float64")
    for p in model.parameters():
        p.data[...] = rng.normal(scale=2, size=p.shape)
    X, y = rng.normal(size=(6, n)), rng.integers(0, k, 6)
    sample = int(rng.integers(0, 6))
    page = _Page(report_html(model, None, X, y, sample=sample, gemm_rate=1e10))
    loss = next(s for s in page.data()["steps"] if s["name"] == "loss")
    p = model.predict(X[sample : sample + 1])[0]
    assert loss["value"] == pytest.approx(-np.log(p[y[sample]]), rel=1e-10)


def test_a_sigmoid_heads_f_prime_is_not_said_to_pass_delta_back(rng):
    # the loss is taken on the head's input z, so δ⁽ᴸ⁾ = p − y and σ′ is not in the chain
    model = Sequential(
        Dense(3, 4, dtype="float64"), Tanh(), Dense(4, 1, dtype="float64"), Sigmoid()
    )
    model.info = {"task": "classification", "loss": "bce_with_logits", "classes": [0, 1]}
    X = rng.normal(size=(5, 3))
    page = report_html(model, X=X, y=rng.integers(0, 2, (5, 1)).astype(float), floor=False)
    notes = re.findall(r"f′\(Z\) = (\w+)′", page)
    assert "tanh" in notes and "sigmoid" not in notes, notes


class _Looped(Module):
    """One Dense (in a ModuleList) applied ``k`` times, ``then`` (a tanh unless given)
    after each: k = 1 is a chain without it, or with an activation."""

    def __init__(self, h, k, then=wxb.nn.functional.tanh):
        super().__init__()
        self.blocks, self.k, self.then = ModuleList([Dense(h, h)]), k, then

    def forward(self, x):
        for _ in range(self.k):
            x = self.blocks[0](x)
            x = x if self.then is None else self.then(x)
        return x


class _Chain(Module):
    """A forward of one's own that only chains its layers (registered last first), and
    counts the runs that went through."""

    runs = 0

    def __init__(self, n, h, k):
        super().__init__()
        self.out = Dense(h, k)
        self.act = Tanh()
        self.hidden = Dense(n, h)

    def forward(self, x):
        y = self.out(self.act(self.hidden(x)))
        type(self).runs += 1  # (a sample of a width its first layer refuses is not a run)
        return y


def test_a_forward_that_only_chains_its_layers_gets_the_chained_diagrams_from_one_sample_run(
    rng,
):
    n, h, k = (int(v) for v in rng.integers(1, 30, size=3))
    model = _Chain(n, h, k)
    _Chain.runs = 0
    summary(model)
    once, _Chain.runs = _Chain.runs, 0  # one summary's sample forward (and its checks)
    page = report_html(model, batch_size=int(rng.integers(1, 64)), floor=False)
    assert _Chain.runs == once  # the summary and the three diagrams ask of that one
    drawn = {d["kind"]: d["source"] for d in _Page(page).data()["diagrams"]}
    assert list(drawn) == ["architecture", "forward", "backward"]
    assert f"({h}×{n})" in drawn["forward"] and f"({k}×{h})" in drawn["forward"]
    assert "No forward or backward diagram" not in page


def test_a_layer_called_more_than_once_leaves_the_chained_diagrams_out_with_a_note(rng):
    # the page drew blocks.0 once in its forward and backward diagrams, as if called once
    h, k = int(rng.integers(1, 30)), int(rng.integers(2, 6))
    page = report_html(_Looped(h, k), batch_size=int(rng.integers(1, 64)), floor=False)
    drawn = {d["kind"]: d["source"] for d in _Page(page).data()["diagrams"]}
    assert list(drawn) == ["architecture"]
    assert "data-kind='forward'" not in page and "data-kind='backward'" not in page
    said = "twice" if k == 2 else f"{k} times"
    note = html.unescape(page)
    assert "No forward or backward diagram is drawn" in note
    assert f"one forward of _Looped calls 'blocks.0' {said}" in note
    assert f"called ×{k} per forward" in drawn["architecture"]  # held once, called k times
    # called once with a × 2 of the forward's own after it: the chain would leave it out
    page = html.unescape(report_html(_Looped(h, 1, then=lambda x: x * 2.0), floor=False))
    assert [d["kind"] for d in _Page(page).data()["diagrams"]] == ["architecture"]
    assert "does more than hand each layer's result to the next" in page
    # called once, nothing else or a tanh of its own after it: both drawn, no note
    for then in (None, wxb.nn.functional.tanh):
        page = report_html(_Looped(h, 1, then=then), floor=False)
        drawn = {d["kind"]: d["source"] for d in _Page(page).data()["diagrams"]}
        assert list(drawn) == ["architecture", "forward", "backward"]
        assert "No forward or backward diagram" not in page
        assert ("tanh(Z⁽¹⁾)" in drawn["forward"]) == (then is not None)
