"""wxb report in a real browser: headless Chromium opens the page from disk with the
network cut off, and everything renders (diagrams to SVG, equations typeset, charts
drawn) with no error on the console and no request leaving the page.

Chromium comes from Debian's `chromium` package (.ci/run installs it). Without it the
tests skip, except under CI (CI=true), where they fail.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import wxb
from wxb.cli import main
from wxb.nn import Dense, Sequential, Sigmoid, Standardize

# once in CI: pages in a browser
pytestmark = [pytest.mark.browser, pytest.mark.one_route]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # no network: every request goes to a proxy on a dead port, every name fails to resolve
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def find_chromium() -> str:
    """Chromium's path; a skip with the reason when it is missing, a failure under CI."""
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found is None:
        reason = "no Chromium (Debian: apt-get install chromium) for the browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + "; CI must have it (.ci/run installs it)")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def chromium() -> str:
    return find_chromium()


def open_in_browser(chromium: str, page: Path, tmp_path: Path) -> tuple[str, str, list[str]]:
    """The page's DOM once its scripts ran, Chromium's log, and the http(s) addresses the
    page itself asked for (from Chromium's network log)."""
    net_log = tmp_path / "net.json"
    result = subprocess.run(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            f"--log-net-log={net_log}",
            "--virtual-time-budget=30000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = net_log.read_text()
    try:
        events = json.loads(text)["events"]
    except json.JSONDecodeError:  # cut short at exit: close the list
        events = json.loads(text.rstrip().rstrip(",") + "]}")["events"]
    # the browser's own background requests carry no file:// isolation key; the page's do
    asked = [
        e["params"]["url"]
        for e in events
        if "file://" in str(e.get("params", {}).get("network_isolation_key", ""))
        and re.match(r"(?i)(https?|wss?|ftp):", str(e["params"].get("url", "")))
    ]
    return result.stdout, result.stderr, asked


def check_rendered(dom: str, log: str, asked: list[str]) -> None:
    assert 'data-ready="ok"' in dom, re.search(r'<pre id="wxb-errors"[^>]*>([^<]*)', dom)
    assert re.search(r'<pre id="wxb-errors"[^>]*>\[\]</pre>', dom)
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert console == []  # no error, warning or message of any kind
    assert asked == []  # nothing fetched
    for attribute in re.findall(r'\s(?:src|href)="([^"]*)"', dom):
        assert not re.match(r"\s*(https?:)?//", attribute)
    # every diagram became an SVG of nonzero size, with no Mermaid error
    figures = re.findall(r"<figure class=\"diagram\" data-kind=\"(\w+)\">(.*?)</figure>", dom, re.S)
    assert [kind for kind, _ in figures] == ["architecture", "forward", "backward"]
    for kind, body in figures:
        size = re.search(r'data-size="(\d+)x(\d+)"', body)
        assert size and int(size[1]) > 0 and int(size[2]) > 0, kind
        assert "<svg" in body and 'class="error-icon' not in body, kind
        assert "Syntax error in text" not in body, kind
    # equations: each became KaTeX, none an error or a command drawn in the error colour
    tex = re.findall(r'<div class="tex"[^>]*>(.*?)</div>\s*(?=<p|<div)', dom, re.S)
    assert tex and all('class="katex' in t for t in tex)
    main = dom[dom.index("<main>") : dom.index("</main>")]  # the page, not its scripts
    assert 'class="katex-error' not in main and "204, 0, 0" not in main
    # charts: every heat-map canvas and SVG chart drew something
    canvases = re.findall(r"<canvas class=\"heatmap\"[^>]*>", dom)
    assert canvases and all(re.search(r'data-drawn="[1-9]\d*"', c) for c in canvases)
    charts = re.findall(r'<svg class="chart[^"]*"[^>]*>(.*?)</svg>', dom, re.S)
    opening = re.findall(r'<svg class="chart[^"]*"[^>]*>', dom)
    assert opening and all('data-drawn="' in tag for tag in opening)
    assert all(re.search(r"<(rect|polyline|circle)", body) for body in charts)


def test_the_digits_report_renders_offline(chromium, tmp_path, rng):
    model, history, page = tmp_path / "m.safetensors", tmp_path / "h.json", tmp_path / "r.html"
    assert (
        main(
            [
                "train",
                "--hidden",
                "16",
                "--epochs",
                "2",
                "--diagnose",
                "-q",
                "--history",
                str(history),
                "-o",
                str(model),
            ]
        )
        == 0
    )
    sample = str(rng.integers(0, 1797))
    assert (
        main(
            [
                "report",
                str(model),
                "--history",
                str(history),
                "--sample",
                sample,
                "--no-floor",
                "-o",
                str(page),
            ]
        )
        == 0
    )
    dom, log, asked = open_in_browser(chromium, page, tmp_path)
    check_rendered(dom, log, asked)
    figures = json.loads(history.read_text())["history"]
    curves = re.findall(r'<svg class="chart curve" data-key="(\w+)"', dom)
    drawn = ["loss", "accuracy", *(["lr"] if len(set(figures["lr"])) > 1 else [])]
    assert curves == drawn  # the learning rate when it changed
    assert len(re.findall(r'<svg class="chart diag"', dom)) == 5  # the diagnostics' charts


def test_hostile_names_stay_text_in_the_browser(chromium, tmp_path, rng):
    # Layer names reach Mermaid labels, LaTeX's \text{…} and attributes.
    odd = "my_norm #1 {50%} $&^~\\ <i id=injected>"
    model = Sequential(
        Standardize.fit(rng.normal(size=(20, 4)), name=odd),
        Dense(4, 6, seed=1, name="hidden1"),
        Sigmoid(name="</div><i id=injected>"),
        Dense(6, 3, name="output"),
    )
    names = ["</script><b id=injected>x", "<img id=injected src=x onerror=alert(1)>", "a&b"]
    model.info = {
        "task": "classification",
        "loss": "cross_entropy",
        "classes": names,
        "feature_names": ["<!--", "</style>", "]]>", "<svg onload=alert(1)>"],
    }
    X = rng.normal(size=(5, 4))
    page = wxb.report(
        model, X=X, y=rng.integers(0, 3, size=5), path=tmp_path / "r.html", floor=False
    )
    dom, log, asked = open_in_browser(chromium, page, tmp_path)
    check_rendered(dom, log, asked)
    assert 'id="injected"' not in dom and "onerror=" not in dom.replace("onerror=alert", "")
    assert "&lt;/script&gt;&lt;b id=injected&gt;x" in dom  # shown as the text it is


def test_ci_cannot_skip_the_browser_tests(monkeypatch):
    """Under CI a missing Chromium fails the tests rather than skipping them."""
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(Path, "exists", lambda self: False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have it"):
        find_chromium()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        find_chromium()
