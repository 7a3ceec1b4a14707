"""The benchmark suite runs end to end (quick mode, tiny config) and writes its JSON.

It checks the shape of the results, never how fast anything was.
"""

import json
import math
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

# once in CI: the benchmarks' scripts and output, not the kernels' numbers
pytestmark = pytest.mark.one_route
ROOT = Path(__file__).resolve().parents[1]
TRAINING_HEADER = ["config", "optimizer", "rate floor ms", "BLAS floor ms", "BLAS ×rate"]


def positive(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def table_headers(markdown: str) -> list[list[str]]:
    """The header cells of every Markdown table: a row followed by a |---| rule."""
    lines = markdown.splitlines()
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line, rule in pairwise(lines)
        if line.startswith("|") and set(rule.replace(" ", "")) <= set("|-:") and "-" in rule
    ]


@pytest.mark.slow
def test_quick_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--configs", "tiny"]
    done = subprocess.run(
        [*command, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    headers = table_headers(done.stdout)
    assert any(h[: len(TRAINING_HEADER)] == TRAINING_HEADER for h in headers), done.stdout
    assert len(headers) >= 5  # GEMM, training, inference, fit, memory

    results = json.loads(out.read_text())
    for section in ("machine", "settings", "gemm", "training", "inference", "fit", "memory"):
        assert section in results, section
    assert results["quick"] is True
    assert results["checks"] == {"losses_finite": True}

    assert {g["dtype"] for g in results["gemm"]} == {"float32", "float64"}
    assert all(positive(g["median_s"]) and positive(g["gflops"]) for g in results["gemm"])

    assert [(r["config"], r["optimizer"]) for r in results["training"]] == [
        ("tiny", "SGD"),
        ("tiny", "Adam"),
    ]
    for row in results["training"]:
        assert positive(row["rate_floor_s"])
        peers = {"torch", "jax"} if results["machine"]["jax"] else {"torch"}
        assert set(row["timings"]) == {"blas_floor", "wxb_step", "wxb_hand"} | peers
        assert set(row["peer_over_wxb"]) == peers
        for timing in row["timings"].values():
            assert positive(timing["median_s"]) and timing["inner"] >= 1
            rounds = timing["per_round_s"]
            assert len(rounds) == results["settings"]["training"]["rounds"]
            assert all(positive(t) for t in rounds)
        assert all(math.isfinite(loss) for loss in row["final_loss"].values())

    assert [r["rows"] for r in results["inference"]] == [1, 1024]
    for row in results["inference"]:
        assert set(row["median_s"]) == {"numpy_floor", "wxb_predict", "wxb_no_grad", "torch"}
        assert all(positive(t) for t in row["median_s"].values())
    forcing = results["machine"]["blas_forcing"]
    assert forcing["kernel"] and forcing["native_kernel"]

    assert [f["workload"] for f in results["fit"]] == ["digits", "mnist-sized"]
    for row in results["fit"]:
        assert positive(row["wxb_s_per_epoch"]) and positive(row["sklearn_s_per_epoch"])
        assert 0 <= row["wxb_test_accuracy"] <= 1 and 0 <= row["sklearn_test_accuracy"] <= 1

    memory = results["memory"]
    if "skipped" not in memory:  # Linux only
        paths = [p["path"] for p in memory["peak"]]
        assert paths == ["wxb_step", "wxb_step_numpy", "wxb_hand", "torch"]
        assert all(p["extra_peak_kib"] >= 0 for p in memory["peak"])
        assert [g["path"] for g in memory["growth"]] == ["wxb_step", "wxb_hand"]
        assert positive(memory["math_needs_bytes"]["total"])


def test_table_defaults_runs_the_seeds_asked_for(rng, tmp_path: Path) -> None:
    # --first-seed lets a change be tried on seeds other than the reported 0..4
    first = int(rng.integers(5, 1000))
    out = tmp_path / "t.json"
    command = [sys.executable, str(ROOT / "bench" / "table_defaults.py"), "--datasets", "iris"]
    command += ["--seeds", "2", "--first-seed", str(first), "--json", str(out)]
    command += ["--wxb-args", "--epochs 2 --patience 0"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"seeds {first}–{first + 1}" in done.stdout
    results = json.loads(out.read_text())
    assert results["seeds"] == [first, first + 1]
    (iris,) = results["results"]
    assert [r["seed"] for r in iris["runs"]] == [first, first + 1]
    for run in iris["runs"]:
        assert run["wxb"]["epochs"] == 2
        assert run["wxb"]["test_rows"] == run["sklearn"]["test_rows"] == 30
        assert 0.0 <= run["sklearn"]["score"] <= 1.0
    # the paired figures: rows wxb classified right minus scikit-learn's, seed by seed
    rows = [
        round((r["wxb"]["test"]["accuracy"] - r["sklearn"]["score"]) * 30) for r in iris["runs"]
    ]
    paired = iris["paired"]
    assert paired["mean"] == pytest.approx(np.mean(rows))
    assert paired["low"] <= paired["mean"] <= paired["high"]
    assert (paired["won"], paired["tied"], paired["lost"]) == (
        sum(d > 0 for d in rows),
        sum(d == 0 for d in rows),
        sum(d < 0 for d in rows),
    )


@pytest.mark.slow
def test_the_graph_path_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    command = [sys.executable, str(ROOT / "bench" / "graph_path.py"), "--quick", "--json", str(out)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert table_headers(done.stdout) == [["model", "wxb ms", "torch ms", "torch/wxb"]]
    results = json.loads(out.read_text())["results"]
    assert len(results) == 4
    for name, figures in results.items():
        assert positive(figures["wxb"]["median_s"]) and positive(figures["torch"]["median_s"])
        planned = figures["engine"] == "planned stack"
        assert planned == name.startswith("Sequential (planned"), figures["engine"]


@pytest.mark.slow
def test_the_lean_stack_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "l.json"
    command = [sys.executable, str(ROOT / "bench" / "lean_stack.py"), "--quick", "--json", str(out)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]  # (it checks each contender's path)
    headers = ["network", "optimizer", "path", "general µs", "lean µs", "saved µs", "×"]
    assert table_headers(done.stdout) == [headers]
    results = json.loads(out.read_text())["results"]
    assert len(results) == 8  # zero and tiny × SGD and Adam × step and hand
    for figures in results.values():
        assert positive(figures["lean"]["median_s"]) and positive(figures["general"]["median_s"])


@pytest.mark.slow
def test_the_custom_module_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    script = str(ROOT / "bench" / "custom_module.py")
    command = [sys.executable, script, "--quick", "--rows", "256", "--json", str(out)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert table_headers(done.stdout) == [["optimizer", "contender", "µs a step", "torch/this"]]
    results = json.loads(out.read_text())["results"]
    assert sorted(results) == ["Adam", "SGD"]
    for figures in results.values():
        assert len(figures["median_s"]) == 4
        assert all(positive(s) for s in figures["median_s"].values())


@pytest.mark.slow
def test_the_fit_bound_benchmark_runs_and_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    command = [sys.executable, str(ROOT / "bench" / "fit_bound.py"), "--quick", "--json", str(out)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert table_headers(done.stdout) == [["part", "s/epoch", "× floor"]]
    results = json.loads(out.read_text())["results"]
    median = results["median"]
    assert sorted(median) == ["adam", "floor", "gather", "sklearn", "wxb"]
    assert all(positive(s) for s in median.values())
    # the bound is the three parts' sum, and the ratios are of the medians it printed
    assert results["bound"] == pytest.approx(median["floor"] + median["gather"] + median["adam"])
    assert results["sklearn_over_bound"] == pytest.approx(median["sklearn"] / results["bound"])
