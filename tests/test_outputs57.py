"""Every file the CLI writes: a name that says another format is refused in one line
before any work, an option that does nothing is refused, and a write that fails midway
(disk full, Ctrl-C) leaves the old file whole."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import wxb
import wxb.data as wdata
from wxb.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, err: str, pattern: str, msg: str) -> None:
    assert code == 2, msg(f"exit {code}: {err}")
    assert err.startswith("wxb: error: ") and err.count("\n") == 1, msg(err)
    assert re.search(pattern, err), msg(f"{pattern!r} not in {err!r}")


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def trained(tmp_path, seeded, capsys):
    """A small table, a model trained on it briefly and its history."""
    rng = seeded.rng
    n = int(rng.integers(30, 50))
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + rng.normal(scale=0.3, size=n) > 0).astype(int)
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}).to_csv(data, index=False)
    model, history = tmp_path / "m.safetensors", tmp_path / "h.json"
    code, _, err = run(capsys, "train", "--data", data, "--target", "y", "--hidden", "4",
                       "--epochs", "2", "-q", "-o", model, "--history", history)  # fmt: skip
    assert code == 0, seeded.msg(err)
    return data, model, history


def test_history_and_reports_refuse_another_formats_name(tmp_path, trained, seeded, capsys):
    """--history keep.csv wrote JSON over a data file, wxb report -o keep.csv HTML over
    one, and --report r.onnx, report -o r.safetensors, wxb.report(path='r.pt') and
    wxb.onnx.export(model, 'm.csv') wrote under another format's name. Refused in one
    line, before any training, writing nothing."""
    data, model, _ = trained
    keep = tmp_path / "keep.csv"
    keep.write_bytes(data.read_bytes())
    before = snapshot(tmp_path)
    train = ["train", "--data", data, "--target", "y", "--hidden", "4", "--epochs", "2", "-q"]
    new_model = tmp_path / "new.safetensors"
    for option, name, says in [
        ("--history", keep, r"writes JSON, not a CSV table \(\.csv\); name the file \.json"),
        ("--report", tmp_path / "r.onnx", r"HTML page, not ONNX \(\.onnx\); name the file \.html"),
    ]:
        code, out, err = run(capsys, *train, "-o", new_model, option, name)
        one_line_error(code, err, re.escape(str(name)) + ": .*" + says, seeded.msg)
        assert out == "", seeded.msg(f"{option}: trained before refusing: {out}")
    for name in (keep, tmp_path / "r.safetensors", tmp_path / "r.parquet"):
        code, _, err = run(capsys, "report", model, "--no-floor", "-o", name)
        one_line_error(code, err, re.escape(f"{name}: a report is one HTML page"), seeded.msg)
    loaded = wxb.load(model)
    with pytest.raises(wxb.errors.DataError, match=r"r\.pt: wxb\.report writes one HTML page"):
        wxb.report(loaded, path=tmp_path / "r.pt", floor=False)
    pytest.importorskip("onnx")
    from wxb.onnx import export

    with pytest.raises(wxb.errors.ConfigError, match=r"keep\.csv: wxb\.onnx\.export writes ONNX"):
        export(loaded, keep)
    assert snapshot(tmp_path) == before, seeded.msg("a refused command wrote a file")


def test_seq_len_on_a_model_of_features_is_refused(tmp_path, trained, seeded, capsys):
    """--seq-len sets the ids a row for a model taking ids into an Embedding; a model of
    features ignored it without a word (summary, diagram) or wrote the page all the same."""
    _, model, _ = trained
    length = int(seeded.rng.integers(2, 40))
    page = tmp_path / "r.html"
    for command in (["summary", "--no-floor"], ["diagram"], ["report", "--no-floor", "-o", page]):
        code, out, err = run(capsys, command[0], model, *command[1:], "--seq-len", length)
        pattern = rf"--seq-len {length}: .*m\.safetensors takes rows of 3 features, not ids"
        one_line_error(code, err, pattern, seeded.msg)
        assert out == "", seeded.msg(out)
    assert not page.exists(), seeded.msg("the refused report was written")
    loaded = wxb.load(model)  # and in Python: summary, Module.summary and wxb.report
    for call in (
        lambda: wxb.describe.summary(loaded, seq_len=length),
        lambda: loaded.summary(seq_len=length),
        lambda: wxb.report(loaded, path=page, floor=False, seq_len=length),
    ):
        with pytest.raises(wxb.errors.ConfigError, match=rf"seq_len={length}: the model takes"):
            call()
    assert not page.exists(), seeded.msg("the refused report was written")


def test_train_o_never_overwrites_a_checkpoint_of_states(tmp_path, trained, seeded, capsys):
    """wxb train -o replaced a checkpoint wxb.save wrote of a dict (an optimiser's state,
    the epoch) with a model, as it replaces a model; a checkpoint is kept."""
    data, model, _ = trained
    checkpoint = tmp_path / "ck.safetensors"
    wxb.save({"epoch": 3, "moment": seeded.rng.normal(size=4)}, checkpoint)
    before = checkpoint.read_bytes()
    args = ["train", "--data", data, "--target", "y", "--hidden", "4", "--epochs", "2", "-q"]
    code, out, err = run(capsys, *args, "-o", checkpoint)
    one_line_error(code, err, r"ck\.safetensors is a wxb checkpoint file", seeded.msg)
    assert checkpoint.read_bytes() == before and out == "", seeded.msg(out)
    code, _, err = run(capsys, *args, "-o", model)  # a model still replaces a model
    assert code == 0, seeded.msg(err)


def test_an_output_that_is_an_input_under_another_name_is_refused(
    tmp_path, trained, seeded, capsys
):
    """predict -o (and every output) was compared with the inputs by resolved path: a
    second name of the input (a hard link here; on macOS's and Windows's disks 'Data.csv'
    for 'data.csv', where the write then replaced the data) passed."""
    data, model, _ = trained
    alias = tmp_path / "alias.csv"
    alias.hardlink_to(data)
    before = data.read_bytes()
    code, out, err = run(capsys, "predict", model, data, "-o", alias)
    one_line_error(code, err, r"alias\.csv is also an input of this command", seeded.msg)
    assert alias.read_bytes() == before and os.path.samefile(alias, data), seeded.msg(out)


def _fails_halfway(monkeypatch, target: Path, error: BaseException) -> None:
    """The write of ``target`` (its temporary, ``.NAME.….tmp``) stops with ``error``
    after half its bytes, as a full disk or a Ctrl-C stops it."""
    original, held = wdata._write_all, wdata._held_temporary
    temporaries: dict[int, str] = {}  # each open temporary's name, by descriptor

    def named(*args):
        fd, temporary = held(*args)
        temporaries[fd] = temporary
        return fd, temporary

    def half_then_fail(handle, payload):
        if not Path(temporaries.get(handle.fileno(), "")).name.startswith(f".{target.name}."):
            return original(handle, payload)
        data = b"".join(bytes(p) for p in ([payload] if isinstance(payload, bytes) else payload))
        handle.write(data[: len(data) // 2])
        handle.flush()
        raise error

    monkeypatch.setattr(wdata, "_held_temporary", named)
    monkeypatch.setattr(wdata, "_write_all", half_then_fail)


def test_every_output_failing_midway_keeps_the_old_file(tmp_path, trained, seeded, capsys):
    """predict -o, report -o, export -o, plot -o and train's --history: a write that
    fails halfway (a full disk: one line naming the path, exit 2; Ctrl-C: exit 130)
    leaves the old file's bytes and no temporary beside it."""
    data, model, history = trained
    rng = seeded.rng
    train = ["train", "--data", data, "--target", "y", "--hidden", "4", "--epochs", "2", "-q"]
    cases = [
        (tmp_path / "p.csv", ["predict", model, data, "-o", tmp_path / "p.csv"]),
        (tmp_path / "r.html", ["report", model, "--no-floor", "-o", tmp_path / "r.html"]),
        (tmp_path / "h2.json", [*train, "-o", tmp_path / "m2.safetensors",
                                "--history", tmp_path / "h2.json"]),
    ]  # fmt: skip
    try:
        import onnx  # noqa: F401

        cases.append((tmp_path / "m.onnx", ["export", model, "-o", tmp_path / "m.onnx"]))
    except ImportError:
        pass
    try:
        import matplotlib  # noqa: F401

        charts = tmp_path / "plots"
        cases.append((charts / "loss.png", ["plot", history, "-o", charts]))
    except ImportError:
        pass
    for target, argv in cases:
        target.parent.mkdir(exist_ok=True)
        old = rng.bytes(int(rng.integers(1, 64)))
        if target.suffix == ".png":  # an earlier chart (a file no PNG is refused before)
            old = b"\x89PNG\r\n\x1a\n" + old
        target.write_bytes(old)
        for error, status in ((OSError(errno.ENOSPC, "No space left on device"), 2),
                              (KeyboardInterrupt(), 130)):  # fmt: skip
            with pytest.MonkeyPatch.context() as patch:
                _fails_halfway(patch, target, error)
                code, _, err = run(capsys, *argv)
            where = f"{argv[0]} {target.name} {type(error).__name__}"
            assert code == status, seeded.msg(f"{where}: exit {code}: {err}")
            if status == 2:
                one_line_error(code, err, re.escape(f"{target}: No space left"), seeded.msg)
            assert target.read_bytes() == old, seeded.msg(f"{where}: the old file changed")
            left = [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")]
            assert left == [], seeded.msg(f"{where}: temporaries left: {left}")


def test_format_name_check_takes_its_own_suffixes_in_any_case(rng):
    """check_format_name: the own suffixes pass in any case, names without a known
    suffix pass, and each other format's suffix is refused naming it."""
    own = (".json",)
    for name in ("h.JSON", "history", "h.json", "run.log", "h.v2"):
        wdata.check_format_name(name, "writes JSON", own)
    wdata.check_format_name("r.HTM", "writes HTML", (".html", ".htm"))
    others = [s for s in wdata.OTHER_MODEL_FORMATS if s not in own] + [".safetensors"]
    for suffix in rng.choice(others, size=8, replace=False):
        name = f"h{suffix.upper() if rng.integers(2) else suffix}"
        with pytest.raises(wxb.errors.DataError, match=rf"{re.escape(name)}: writes JSON, not "):
            wdata.check_format_name(name, "writes JSON", own)
    assert np.all([s.startswith(".") for s in others])


def test_python_writers_refuse_a_path_that_names_a_folder(tmp_path, rng):
    """wxb.save(model, 'out/'), wxb.save(checkpoint, 'out/'), wxb.onnx.export(model,
    'out/') and wxb.report(model, path='out/') wrote a file named 'out' (Path() drops the
    separator), as the command line's -o never did."""
    from wxb import nn

    model = nn.Sequential(nn.Linear(*(int(n) for n in rng.integers(1, 6, size=2))))
    folder = f"{tmp_path / 'out'}/"
    calls = [
        (wxb.errors.ConfigError, lambda: wxb.save(model, folder)),
        (wxb.errors.ConfigError, lambda: wxb.save({"w": rng.normal(size=3)}, folder)),
        (wxb.errors.DataError, lambda: wxb.report(model, path=folder, floor=False)),
    ]
    try:
        from wxb.onnx import export

        calls.append((wxb.errors.ConfigError, lambda: export(model, folder)))
    except ImportError:
        pass
    for error, call in calls:
        with pytest.raises(error, match=rf"{re.escape(folder)} names a folder; give a file path"):
            call()
    assert list(tmp_path.iterdir()) == []
