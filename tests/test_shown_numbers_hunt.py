"""Numbers and names wxb explain shows, checked against what they stand for."""

import numpy as np
import pytest

import wxb
from wxb import nn


def test_norm_output_is_numbered_by_its_layer(rng):
    """H after Z⁽ˡ⁾ is H⁽ˡ⁾ (a second one H⁽ˡ⁾₂), as A⁽ˡ⁾ is: not its place in the module
    list, which named a BatchNorm after Z⁽²⁾ H⁽⁶⁾ in a three-layer model."""
    n, h1, h2, k = (int(w) for w in rng.integers(2, 6, size=4))
    model = nn.Sequential(
        nn.Standardize(rng.standard_normal(n), 1 + rng.random(n)),
        nn.Dense(n, h1),
        nn.BatchNorm1d(h1),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Dense(h1, h2),
        nn.LayerNorm(h2),
        nn.BatchNorm1d(h2),
        nn.Tanh(),
        nn.Dense(h2, k),
    )
    X = rng.standard_normal((3, n))
    y = rng.integers(0, k, 3)
    walk = wxb.explain(model, X, y)
    equations = [s.equation for s in walk.steps if s.name.endswith(".out")]
    assert equations[0].startswith("X̂ = ")
    assert equations[1].startswith("H⁽¹⁾ = batchnorm1d1(Z⁽¹⁾)")
    assert equations[2].startswith("H⁽²⁾ = layernorm1(Z⁽²⁾)")
    assert equations[3].startswith("H⁽²⁾₂ = batchnorm1d2(H⁽²⁾)")
    activations = [s.equation for s in walk.steps if s.name.endswith(".A")]
    assert activations == ["A⁽¹⁾ = f(H⁽¹⁾) = relu(H⁽¹⁾)", "A⁽²⁾ = f(H⁽²⁾₂) = tanh(H⁽²⁾₂)"]
    latex = walk.step("batchnorm1d2.out").latex
    assert latex.startswith(r"\mathbf{H}^{(2)}_{2} = ")
    # the numbers under each name are that module's output
    z2 = walk.step("dense2.Z").value
    assert np.allclose(walk.step("layernorm1.out").value, model[6](wxb.Tensor(z2.T)).data.T)


def test_classification_table_shows_no_perfect_score_short_of_perfect(rng):
    """One miss in 20,000+ rows: eval's headline said accuracy 0.99995, the table under it
    accuracy 1.0000 and a recall, precision and F1 of 1.0000 that are not 1."""
    from wxb.metrics import classification_figures, figure_text, format_classification

    rows = int(rng.integers(20_001, 30_000))
    y_true = rng.integers(0, 2, rows)
    y_pred = y_true.copy()
    miss = int(rng.integers(rows))
    y_pred[miss] = 1 - y_pred[miss]
    figures = classification_figures(y_true, y_pred, ["no", "yes"])
    text = format_classification(figures)
    head = text.splitlines()[0]
    assert head == (
        f"accuracy {figure_text(figures['accuracy'])}, macro F1 {figure_text(figures['macro_f1'])}"
    )
    assert float(head.split()[1].rstrip(",")) < 1
    header = text.splitlines()[2].split()
    for line, row in zip(text.splitlines()[3:5], figures["per_class"], strict=True):
        name, *shown, support = line.split()
        assert name == row["class"] and int(support) == row["support"]
        for cell, key in zip(shown, ("precision", "recall", "f1"), strict=True):
            assert cell == figure_text(row[key])
            assert (float(cell) == 1) == (row[key] == 1), (header, line)


def _report_data(page: str) -> dict:
    import json
    import re

    found = re.search(r"id='wxb-data'>(.*?)</script>", page, re.S)
    return json.loads(found.group(1))


def test_report_shows_no_f_prime_on_a_scored_probability_head_before_identity(rng):
    """A Sigmoid head then an Identity: L is scored on the head's z (δ = (σ(z) − y)/B),
    so the report must not show σ′ there as 'the factor δ passes back through', as it
    does not without the Identity; the hidden tanh′ is shown and is 1 − A²."""
    from wxb.reporting import report_html

    n, h = (int(w) for w in rng.integers(2, 6, size=2))
    tail = [nn.Identity()] if rng.random() < 0.5 else [nn.Identity(), nn.Dropout(0.1)]
    model = nn.Sequential(nn.Dense(n, h), nn.Tanh(), nn.Dense(h, 1), nn.Sigmoid(), *tail)
    X = rng.standard_normal((4, n))
    y = rng.integers(0, 2, 4)
    row = int(rng.integers(4))
    data = _report_data(report_html(model, None, X, y, sample=row, floor=False))
    steps = {step["name"]: step for step in data["steps"]}
    assert "fprime" not in steps["sigmoid1.A"]
    dense = model[0]
    a = np.tanh(X[row] @ dense.weight.data.astype(np.float64).T + dense.bias.data)
    fprime = steps["tanh1.A"]["fprime"]
    assert fprime["kind"] == "tanh"
    assert fprime["mean"] == pytest.approx(np.mean(1 - a * a), rel=1e-5)


def test_delta_of_a_softmax_head_before_identity_is_named_as_computed(rng):
    """L is scored on the Softmax head's z, so δ⁽ᴸ⁾ = (softmax(Z) − Y)/B with or without
    an Identity after the head (it said 'chain rule through softmax1, identity1')."""
    n, h, k, rows = (int(w) for w in rng.integers(2, 6, size=4))
    tail = [nn.Identity()] if rng.random() < 0.5 else [nn.Identity(), nn.Dropout(0.2)]
    model = nn.Sequential(nn.Dense(n, h), nn.ReLU(), nn.Dense(h, k), nn.Softmax(), *tail)
    model = model.double()
    X = rng.standard_normal((rows, n))
    y = rng.integers(0, k, rows)
    walk = wxb.explain(model, X, y, sample_rows=None)
    delta = walk.step("dense2.delta")
    assert delta.equation == "δ⁽²⁾ = ∂L/∂Z⁽²⁾ = (softmax(Z⁽²⁾) − Y)/B"
    z = walk.step("dense2.Z").value
    p = np.exp(z - z.max(axis=0)) / np.exp(z - z.max(axis=0)).sum(axis=0)
    assert np.allclose(delta.value, (p - np.eye(k)[y].T) / rows)


def test_saturation_warning_names_what_its_share_counts(rng):
    """saturated_fraction is the share of f′(Z) entries (unit by row) under 0.01; the
    warning called it a share 'of its units', which a layer can have none of (no unit
    saturated on every row) while most of its entries are."""
    from wxb.diagnose import LayerReport, layer_reports, warnings_for

    n, h, rows = 3, int(rng.integers(2, 6)), 8
    model = nn.Sequential(nn.Dense(n, h), nn.Sigmoid(), nn.Dense(h, 1)).double()
    model[0].weight.data[...] = 0.0
    model[0].weight.data[:, 0] = 50.0  # saturated where |x₀| is large, not where it is 0
    X = rng.standard_normal((rows, n))
    X[:, 0] = np.sign(X[:, 0]) * (1 + np.abs(X[:, 0]))  # |50·x₀| ≥ 50: saturated
    X[: rows // 4, 0] = 0.0  # a quarter of the rows: no unit saturated there
    reports = layer_reports(model, X, rng.standard_normal((rows, 1)), nn.MSELoss())
    a = 1 / (1 + np.exp(-(X @ model[0].weight.data.T + model[0].bias.data)))
    entries = np.mean(a * (1 - a) < 0.01)
    assert reports[0].saturated_fraction == pytest.approx(entries) == 0.75
    assert not np.any(np.all(a * (1 - a) < 0.01, axis=0))  # no unit saturated on every row
    shown = [
        LayerReport("hidden", 1.0, 1.0, 1.0, "sigmoid", saturated_fraction=entries),
        LayerReport("out", 1.0, 1.0, 1.0),
    ]
    (warning,) = warnings_for(shown)
    assert "of its units" not in warning and "of its entries" in warning


def test_explain_says_when_its_rows_are_normalised_as_their_own_batch(rng):
    """A BatchNorm1d without running statistics normalises by the batch: explain on the
    first B of N rows shows other numbers than predict gives those rows among all N;
    the walk-through says so (it said nothing, under 'the numbers of a prediction')."""
    n, h, rows = 3, int(rng.integers(2, 6)), int(rng.integers(6, 12))
    norm = nn.BatchNorm1d(h, track_running_stats=False)
    model = nn.Sequential(nn.Dense(n, h), norm, nn.ReLU(), nn.Dense(h, 2)).double()
    X = rng.standard_normal((rows, n))
    walk = wxb.explain(model, X, rng.integers(0, 2, rows), sample_rows=4)
    z = walk.step("dense2.Z").value
    assert np.allclose(z, model.predict(X[:4]).T)  # these 4 rows as one batch
    assert not np.allclose(z, model.predict(X)[:4].T)  # not among all the rows
    intro = "\n".join(walk.sections[0].intro)
    assert "batchnorm1d1 normalises by the statistics of the batch itself" in intro
    plain = nn.Sequential(nn.Dense(n, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dense(h, 2))
    assert "statistics of the batch" not in "\n".join(wxb.explain(plain, X).sections[0].intro)


def test_architecture_diagram_counts_a_layer_listed_twice_once(rng):
    """A Dense listed twice (one W applied twice) showed its parameters at both nodes,
    so the diagram's counts summed to more than the model has; the second says whose
    they are, as the summary's '(shared)' does."""
    import re

    from wxb.describe import architecture_diagram, summary

    n, h = (int(w) for w in rng.integers(2, 7, size=2))
    tied = nn.Dense(n, n)
    norm = nn.LayerNorm(n)
    model = nn.Sequential(tied, norm, nn.Tanh(), tied, norm, nn.ReLU(), nn.Dense(n, h))
    text = architecture_diagram(model)
    counts = [int(c.replace(",", "")) for c in re.findall(r"<br>([\d,]+) parameters", text)]
    assert sum(counts) == summary(model).parameters == sum(p.data.size for p in model.parameters())
    assert text.count("parameters shared with dense1") == 1
    assert text.count("parameters shared with layernorm1") == 1


def test_report_charts_show_no_one_short_of_one():
    """The report's chart tips (report.js fmt) showed an accuracy of 0.99996 as '1'."""
    import json
    import re
    import shutil
    import subprocess
    from importlib import resources

    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run the report's script")
    script = (resources.files("wxb") / "assets" / "report.js").read_text(encoding="utf-8")
    fmt = re.search(r"  function fmt\(v\) \{\n.*?\n  \}\n", script, re.S).group(0)
    values = [0.99996, -0.99996, 1.0, 0.5, 0.123456, 1.00004, 0.0, 12345.0]
    code = fmt + f"console.log(JSON.stringify({values}.map(fmt)));"
    shown = subprocess.run([node, "-e", code], capture_output=True, text=True, check=True)
    texts = json.loads(shown.stdout)
    assert texts[:6] == ["0.99996", "-0.99996", "1", "0.5", "0.1235", "1.00004"]
    for value, text in zip(values[:6], texts, strict=False):
        assert (float(text) == 1) == (value == 1)


def test_explain_and_report_name_the_rows_they_walk_through(rng, tmp_path, capsys):
    """wxb explain --sample 5 --rows 2 said 'B = 2, every row of X' (and the report's
    walk-through of row 3 'B = 1, every row of X'): which rows of the file the numbers
    are of was not said. Both now name them, and the numbers are those rows'."""
    from cli_run import run, trained

    from wxb.reporting import report_html

    rows = 30
    X = rng.standard_normal((rows, 3))
    data = tmp_path / "data.csv"
    table = "a,b,c,y\n" + "".join(f"{a},{b},{c},{a + b > 0:d}\n" for a, b, c in X)
    data.write_text(table)
    model_path = trained(capsys, data, "--target", "y")
    first, count = int(rng.integers(0, rows - 3)), 2
    code, out, err = run(
        capsys, "explain", model_path, "--data", data, "--sample", first, "--rows", count
    )
    assert code == 0, err
    assert f"B = 2, rows {first}–{first + 1} of {data};" in out
    model = wxb.load(model_path)
    walk = wxb.explain(model, X[first : first + count], sample_rows=None)
    assert _fmt_z(walk) in out  # the numbers shown are those rows'

    page = report_html(model, None, X, None, sample=first, floor=False)
    steps = _report_data(page)["steps"]
    assert f"row {first} of X" in page and "every row of X" not in page
    z = wxb.explain(model, X[first : first + 1], sample_rows=None).step("hidden1.Z").value
    shown = next(step for step in steps if step["name"] == "hidden1.Z")
    # float32 values summed in another order: the mean (near 0 here) to the rounding of
    # the values it averages, not relative to itself
    rounding = 8 * float(np.finfo(z.dtype).eps) * float(np.abs(z).max())
    assert shown["mean"] == pytest.approx(float(np.mean(z, dtype=np.float64)), abs=rounding)


def _fmt_z(walk) -> str:
    from wxb.explanation import _fmt_text

    return _fmt_text(walk.step("hidden1.Z").value)


def test_explain_names_the_classes_of_the_indices_it_shows_as_y(rng):
    """y is shown as class indices (the rows of Z); for a model whose classes are words
    'y = [2, 0]' did not say which class 2 is. The loss note now says it."""
    n, k, rows = 3, 3, int(rng.integers(2, 8))
    model = nn.Sequential(nn.Dense(n, 4), nn.ReLU(), nn.Dense(4, k))
    model.info.update({"task": "classification", "classes": ["ant", "moose", "zebra"]})
    y = rng.integers(0, k, rows)
    note = wxb.explain(model, rng.standard_normal((rows, n)), y).step("loss").note
    names = ["ant", "moose", "zebra"]
    listed = ", ".join(f"{c} = {names[c]}" for c in sorted(set(y[:4].tolist())))
    assert note.endswith(f"; classes {listed}"), note
    assert f"y = [{', '.join(map(str, y[:4]))}]" in note
    model.info["classes"] = [0, 1, 2]  # names that are their indices: nothing to add
    plain = wxb.explain(model, rng.standard_normal((rows, n)), y).step("loss").note
    assert "classes" not in plain
