"""What every figure shares: one colour per activation (and per extra series), the labels,
the matplotlib style, the mean-with-band line, whole-number x ticks, and saving as PNG and PDF.

Curves are the mean over seeds with a min-max band; PDFs are saved without a creation date, so
reruns give identical files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from trainact.files import atomic_write  # noqa: E402
from trainact.report.figure_params import FORMATS  # noqa: E402

#: One colour per activation (and per extra series), the same in every figure.
COLORS = {
    "relu": "#4d4d4d",
    "fourier": "#1f77b4",
    "lc": "#d62728",
    "pretrained": "#2ca02c",
    "pso_test": "#9467bd",
    "pso_train": "#ff7f0e",
}
LABELS = {"relu": "CNN (ReLU)", "fourier": "Fourier-CNN", "lc": "LC-CNN"}
BAND_ALPHA = 0.2
DPI = 150
STYLE = {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8, "axes.titlesize": 10}


def band(ax, x, frame: pd.DataFrame, column: str, color: str, label: str, **line_kw) -> None:
    """Mean line of ``column`` with its min-max band (a marker where the line is one point,
    e.g. one pretraining epoch per stage, which a bare line would not show)."""
    if len(x) < 2:
        line_kw.setdefault("marker", "o")
    ax.fill_between(
        x, frame[f"{column}_min"], frame[f"{column}_max"], color=color, alpha=BAND_ALPHA, linewidth=0
    )
    ax.plot(x, frame[f"{column}_mean"], color=color, label=label, **line_kw)


def integer_ticks(*axes) -> None:
    """Epochs and generations are whole numbers: no fractional x ticks. An axis whose data
    span less than one unit (a single epoch) is widened to one unit each side of its centre,
    else the locator has no integers to choose and falls back to fractions."""
    for ax in axes:
        low, high = ax.get_xlim()
        if high - low < 2:
            centre = round((low + high) / 2)
            ax.set_xlim(centre - 1, centre + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def seed_note(*frames: pd.DataFrame) -> str:
    """Title note: the largest number of seeds averaged at any point."""
    seeds = max(int(frame["n"].max()) for frame in frames)
    return f"mean over {seeds} seed{'s' if seeds != 1 else ''}, band: min-max"


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` atomically; returns their paths."""
    written = []
    for ext in FORMATS:
        metadata = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        path = atomic_write(
            Path(out_dir) / f"{stem}.{ext}",
            lambda tmp: fig.savefig(tmp, format=ext, dpi=DPI, metadata=metadata),  # noqa: B023
        )
        written.append(path)
    return written
