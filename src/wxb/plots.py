"""PNG plots of a training history: the loss and metric curves, and the per-layer
diagnostics of ``fit(diagnose=True)`` (‖W‖, ‖∂L/∂W‖, ‖δ‖, dead and saturated units).

matplotlib is an optional extra (``pip install matplotlib``, wxb's 'plots'); it is imported
only here, with the Agg backend, so plots need no screen.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from wxb.data import atomic_write, check_can_write, check_folder_name
from wxb.errors import ConfigError, DataError, install_hint


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(f"plots need matplotlib: {install_hint('matplotlib', 'plots')}") from None
    matplotlib.use("Agg")  # files only, no window
    import matplotlib.pyplot as plt

    return plt


def check_history(record: Any, source: str = "history") -> dict[str, Any]:
    """A History's dict (``History.to_dict()`` or its JSON) with at least one epoch."""
    figures = record.get("history") if isinstance(record, dict) else None
    if isinstance(figures, dict) and not any(figures.values()):  # wxb's, stopped early on
        raise DataError(
            f"{source}: a history of no finished epoch (its run stopped during the first): "
            "nothing to show"
        )
    if not isinstance(figures, dict) or not figures.get("loss"):
        raise DataError(f"{source}: not a wxb history (no per-epoch 'loss'); write one with "
                        "wxb train --history PATH")  # fmt: skip
    return record


PLOT_FILES = ("loss.png", "accuracy.png", "diagnostics.png")  # what plot_history may write
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_plot_folder(
    folder: str | Path,
    protect: tuple[Path, ...] = (),
    written: tuple[Path, ...] = (),
    option: str = "plot_history's folder",
) -> list[Path]:
    """Before any work: ``folder`` is a folder (or can be made) and each chart's file can
    be written without destroying an input, another output, a wxb file or a file that is
    no PNG image (a chart of an earlier run is replaced). Returns the charts' paths."""
    check_folder_name(folder, option)
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise DataError(f"{folder} is a file; {option} takes a folder")
    charts = [path / name for name in PLOT_FILES]
    for chart in charts:
        check_can_write(chart, "plot", protect=protect, written=written)
        if chart.is_file() and not _is_png(chart):
            raise DataError(f"{chart} is not a PNG image; refusing to overwrite it with the plot")
    return charts


def _is_png(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(len(_PNG_SIGNATURE)) == _PNG_SIGNATURE
    except OSError:  # (unreadable: not known to be a chart)
        return False


def plot_history(record: dict[str, Any], folder: str | Path) -> list[Path]:
    """Write loss.png, accuracy.png (if there is one) and diagnostics.png (if recorded)
    into ``folder``; returns the paths written."""
    record = check_history(record)
    check_plot_folder(folder)  # (a file of one's own there was replaced without a word)
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures = record["history"]
    title = "Loss per epoch"
    if record.get("loss_note"):  # e.g. a regression trained on standardized targets
        title += "\n" + _wrapped(record["loss_note"])
    written = [_save(plt, _curves(plt, figures, "loss", title), folder / "loss.png")]
    if "accuracy" in figures:
        chart = _curves(plt, figures, "accuracy", "Accuracy per epoch")
        written.append(_save(plt, chart, folder / "accuracy.png"))
    if record.get("diagnostics"):
        chart = _diagnostics(plt, record["diagnostics"], record.get("warnings", []))
        written.append(_save(plt, chart, folder / "diagnostics.png"))
    return written


def _wrapped(text: str, width: int = 70) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _curves(plt, figures: dict[str, list[float]], key: str, title: str):
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    epochs = range(1, len(figures[key]) + 1)
    ax.plot(epochs, figures[key], marker="o", markersize=3, label=f"training {key}")
    if f"val_{key}" in figures:
        ax.plot(epochs, figures[f"val_{key}"], marker="o", markersize=3, label=f"validation {key}")
    ax.set(xlabel="epoch", ylabel=key)
    ax.set_title(title, fontsize="medium" if "\n" in title else "large")
    if key == "loss" and min(figures[key]) > 0:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def _diagnostics(plt, diagnostics: list[dict[str, Any]], warnings: list[str]):
    """One panel per figure, one line per layer holding a weight, over the epochs."""
    epochs = [d["epoch"] for d in diagnostics]
    layers = [layer["layer"] for layer in diagnostics[0]["layers"]]
    panels = [
        ("weight_norm", "‖W‖", True),
        ("weight_grad_norm", "‖∂L/∂W‖", True),
        ("delta_norm", "‖δ‖ = ‖∂L/∂Z‖", True),
        ("unit_fraction", "dead ReLU units / saturated entries", False),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), dpi=110)
    for ax, (key, label, log) in zip(axes.flat, panels, strict=True):
        for index, name in enumerate(layers):
            series = [_unit_fraction(d["layers"][index]) if key == "unit_fraction"
                      else d["layers"][index][key] for d in diagnostics]  # fmt: skip
            if any(v is not None for v in series):
                ax.plot(epochs, series, marker="o", markersize=3, label=f"{index + 1}: {name}")
        ax.set(title=label, xlabel="epoch")
        if log:
            ax.set_yscale("log")
        else:
            ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # no ReLU/sigmoid/tanh layer: nothing to label
            ax.legend(fontsize="small")
    title = "Per-layer diagnostics"
    if warnings:  # "epoch 1: δ shrinks 10⁸× from … to …: cause" → its middle part
        parts = warnings[0].split(": ")
        title += f" — {parts[0]}: {parts[1] if len(parts) > 1 else ''}"
        title += f" (+{len(warnings) - 1} more warnings)" if len(warnings) > 1 else ""
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    return fig


def _unit_fraction(layer: dict[str, Any]) -> float | None:
    dead, saturated = layer.get("dead_fraction"), layer.get("saturated_fraction")
    return dead if dead is not None else saturated


def _save(plt, fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write(path, buffer.getvalue())
    return path
