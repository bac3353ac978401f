"""The paper's Figures 2-9, the learned activation curves and the network structure.

Every plotting function takes already-aggregated data and returns a matplotlib ``Figure`` (so
tests can read the plotted values back); :func:`make_figures` reads the results folder,
draws and saves each figure as PNG and PDF (atomically, PDFs without a creation date so reruns
give identical files). Colours are fixed per activation across all figures
(:data:`COLORS`); curves are the mean over seeds with a min-max band.

Which figures there are, their paper numbers, captions and file stems are in
:data:`trainact.report.figure_list.FIGURES`; each figure group has one ``draw_<group>`` function here
(:data:`DRAW_GROUP`) that reads its results and calls the group's ``plot_*`` function.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from tqdm import tqdm  # noqa: E402

from trainact.files import atomic_write  # noqa: E402
from trainact.analysis.labels import SPLIT_WORDS
from trainact.analysis.thresholds import ABOUT_HALF, CHANCE_ACCURACY
from trainact.names import (
    ACTIVATIONS,
    AUTOENCODER_MODEL,
    LC_CANDIDATES,
    PSO_MODEL,
    SIZES,
    TRAINABLE,
)
from trainact.report.figure_list import (
    curve_figure_stem,
    CURVE_FIGURES,
    FIGURE_GROUPS,
    figure_groups,
)
from trainact.report.figure_list import figure_stems as _figure_stems  # noqa: E402
from trainact.analysis.aggregate import (  # noqa: E402
    METRICS,
    PRETRAIN_REQUIRED,
    PSO_REQUIRED,
    autoencoder_history_path,
    autoencoder_pretrain_path,
    check_names,
    mean_curves,
    ok_rows,
    pso_history_path,
    read_csv_checked,
    read_history,
    train_activations_path,
    train_history_path,
)

log = logging.getLogger(__name__)

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
#: The learned activation curves span ± this many times the root mean square of each layer's
#: input at the start: the calibrated Fourier fit covers ±3 of it, a little beyond shows where
#: the periodic series turns.
CURVE_RANGE_RMS = 4.0
#: Columns of a run's activation_health.csv that the health figure draws (trainact.training.train writes it).
HEALTH_REQUIRED = ("epoch", "layer", "param_relative_distance", "outside_fit_share", "nonlinear_share", "relu_nonlinear_share")
#: One line style per activation layer (input to output) in the health figure.
LAYER_STYLES = ("-", "--", "-.", ":")
FORMATS = ("png", "pdf")
BAND_ALPHA = 0.2
DPI = 150
#: ``kind`` values of ``activations.json`` layers -> activation name.
LAYER_KINDS = {"fourier": "fourier", "lc": "lc", "linearcombination": "lc"}
STYLE = {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8, "axes.titlesize": 10}


@dataclass(frozen=True)
class FigureParams:
    """What to draw: the workflow's ``--params`` slice for ``trainact figures``.

    ``figures`` lists the groups to draw (default: every group whose inputs the other keys
    promise: autoencoder/pso only with their seeds, activations only with a trainable one).
    ``model`` is the config's model slice (for the structure figure); ``activation_range`` the
    x interval of the activation curves.
    """

    sizes: tuple[str, ...] = SIZES
    activations: tuple[str, ...] = ACTIVATIONS
    seeds: tuple[int, ...] = (0,)
    autoencoder_seeds: tuple[int, ...] = ()
    pso_seeds: tuple[int, ...] = ()
    figures: tuple[str, ...] | None = None
    model: Mapping[str, Any] = field(default_factory=dict)
    activation_range: tuple[float, float] = (-4.0, 4.0)

    @classmethod
    def from_dict(cls, params: Mapping[str, Any], ignore: Sequence[str] = ()) -> "FigureParams":
        """Validate ``params``; unknown keys raise ``ValueError`` unless listed in ``ignore``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known - set(ignore))
        if unknown:
            raise ValueError(f"unknown figure parameter(s) {unknown}; known: {sorted(known)}")
        values = {k: v for k, v in params.items() if k in known}
        for key in ("sizes", "activations", "figures"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        for key in ("seeds", "autoencoder_seeds", "pso_seeds"):
            if key in values:
                values[key] = tuple(int(s) for s in values[key])
        if "activation_range" in values:
            low, high = (float(v) for v in values["activation_range"])
            if not low < high:
                raise ValueError(
                    f"activation_range must be (low, high) with low < high, got {values['activation_range']!r}"
                )
            values["activation_range"] = (low, high)
        result = cls(**values)
        object.__setattr__(result, "sizes", tuple(check_names("sizes", result.sizes, SIZES)))
        object.__setattr__(result, "activations", tuple(check_names("activations", result.activations, ACTIVATIONS)))
        if result.figures is not None:
            check_names("figure groups", result.figures, FIGURE_GROUPS)
        if not result.seeds:
            raise ValueError("no seeds given")
        return result

    def groups(self) -> tuple[str, ...]:
        """The figure groups to draw, in drawing order (:func:`trainact.report.figure_list.figure_groups`)."""
        return figure_groups(self.activations, bool(self.autoencoder_seeds), bool(self.pso_seeds), self.figures)


def figure_stems(params: FigureParams) -> dict[str, list[str]]:
    """Figure group -> file stems it writes (each as ``.png`` and ``.pdf``)."""
    return _figure_stems(params.groups(), params.sizes)


def output_files(params: Mapping[str, Any] | FigureParams, ignore: Sequence[str] = ()) -> list[str]:
    """File names (relative to the figures folder) that :func:`make_figures` writes for ``params``.

    The workflow uses this to declare the rule's outputs.
    """
    if not isinstance(params, FigureParams):
        params = FigureParams.from_dict(params, ignore)
    return [f"{stem}.{ext}" for stems in figure_stems(params).values() for stem in stems for ext in FORMATS]


# ------------------------------------------------------------------------------------ loading


def train_curves(results: Path, size: str, activation: str, seeds: Sequence[int]) -> pd.DataFrame:
    """Per-epoch mean/std/min/max over seeds of the four metrics of one model (``ok`` epochs only)."""
    frames = {seed: ok_rows(read_history(train_history_path(results, size, activation, seed))) for seed in seeds}
    return mean_curves(frames, "epoch", METRICS)


def layer_curves(layer: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """Values of one saved activation layer at the points ``x``: shape ``(channels, len(x))``.

    ``layer`` is an entry of ``activations.json`` (``kind`` and ``params``); a per-layer
    activation gives one row. Evaluated with the reference formulas of ``trainact.nn.activations``.
    """
    import torch

    from trainact.nn.linear_combination import LC_DEFAULT_EPS
    from trainact.nn.reference import (
        fourier_at_scale,
        fourier_reference,
        linear_combination_reference,
    )

    kind = LAYER_KINDS.get(str(layer.get("kind", "")).lower())
    if kind is None:
        raise ValueError(
            f"layer {layer.get('name')!r}: unknown kind {layer.get('kind')!r}; expected one of {sorted(LAYER_KINDS)}"
        )
    params = layer["params"]

    def tensor(value: Any) -> torch.Tensor:
        return torch.as_tensor(value, dtype=torch.float64)

    points = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if kind == "fourier":
        A, omega, a, b = (tensor(params[k]) for k in ("A", "omega", "a", "b"))
        # the calibrated start's fixed scale s (s g(x / s)); absent (1) in older files
        A, omega, a, b = fourier_at_scale(A, omega, a, b, float(tensor(params.get("scale", [1.0])).reshape(-1)[0]))
        if a.dim() == 2:
            channels = a.shape[0]
            values = fourier_reference(
                points.expand(1, channels, -1), A.reshape(channels), omega.reshape(channels), a, b
            )[0]
        else:
            values = fourier_reference(points, A.reshape(-1)[:1], omega.reshape(-1)[:1], a, b)[None]
    else:
        weights = tensor(params["weights"])
        candidates = tuple(params.get("candidates", LC_CANDIDATES))
        eps = float(params.get("eps", LC_DEFAULT_EPS))
        if weights.dim() == 2:
            values = linear_combination_reference(points.expand(1, weights.shape[0], -1), weights, candidates, eps)[0]
        else:
            values = linear_combination_reference(points, weights, candidates, eps)[None]
    return np.asarray(values.detach().cpu().numpy(), dtype=float)


def load_activation_documents(
    results: Path, sizes: Sequence[str], activations: Sequence[str], seeds: Sequence[int]
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """``(size, activation) -> [activations.json of each seed]`` for the trainable activations.

    A run that diverged writes no ``activations.json``; such seeds are skipped with a warning,
    but a model with none at all raises ``FileNotFoundError`` naming the expected paths.
    """
    documents: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for size in sizes:
        for activation in [a for a in activations if a in TRAINABLE]:
            paths = [train_activations_path(results, size, activation, seed) for seed in seeds]
            present = [p for p in paths if p.is_file()]
            for path in sorted(set(paths) - set(present)):
                log.warning("no learned activations for %s (diverged run?); skipped", path)
            if not present:
                raise FileNotFoundError(
                    f"no activations.json for {size}-{activation}: expected {[str(p) for p in paths]}"
                )
            documents[(size, activation)] = [json.loads(p.read_text(encoding="utf-8")) for p in present]
    return documents


# ----------------------------------------------------------------------------------- plotting


def _band(ax, x, frame: pd.DataFrame, column: str, color: str, label: str, **line_kw) -> None:
    """Mean line of ``column`` with its min-max band (a marker where the line is one point,
    e.g. one pretraining epoch per stage, which a bare line would not show)."""
    if len(x) < 2:
        line_kw.setdefault("marker", "o")
    ax.fill_between(x, frame[f"{column}_min"], frame[f"{column}_max"], color=color, alpha=BAND_ALPHA, linewidth=0)
    ax.plot(x, frame[f"{column}_mean"], color=color, label=label, **line_kw)


def _integer_ticks(*axes) -> None:
    """Epochs and generations are whole numbers: no fractional x ticks. An axis whose data
    span less than one unit (a single epoch) is widened to one unit each side of its centre,
    else the locator has no integers to choose and falls back to fractions."""
    for ax in axes:
        low, high = ax.get_xlim()
        if high - low < 2:
            centre = round((low + high) / 2)
            ax.set_xlim(centre - 1, centre + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _seed_note(*frames: pd.DataFrame) -> str:
    """Title note: the largest number of seeds averaged at any point."""
    seeds = max(int(frame["n"].max()) for frame in frames)
    return f"mean over {seeds} seed{'s' if seeds != 1 else ''}, band: min-max"


def plot_curves(curves: Mapping[str, pd.DataFrame], split: str, size: str) -> Figure:
    """Accuracy | loss per epoch of the models of one size on one split (Figures 2-7).

    ``curves`` maps activation -> :func:`train_curves` result. Lines are labelled with
    :data:`LABELS`; the left axes hold accuracy, the right axes loss.
    """
    with plt.rc_context(STYLE):
        fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        for activation in [a for a in ACTIVATIONS if a in curves]:
            frame = curves[activation]
            x = frame.index.to_numpy()
            for ax, metric in ((ax_acc, "acc"), (ax_loss, "loss")):
                _band(ax, x, frame, f"{split}_{metric}", COLORS[activation], LABELS[activation])
        ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
        ax_loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
        _integer_ticks(ax_acc, ax_loss)
        ax_acc.legend(loc="lower right")
        number = CURVE_FIGURES[(split, size)]
        fig.suptitle(f"Figure {number}: {size} models on {SPLIT_WORDS[split]} data ({_seed_note(*curves.values())})")
    return fig


def plot_autoencoder(pretrained: pd.DataFrame, baseline: pd.DataFrame, pretrain: pd.DataFrame) -> Figure:
    """Validation accuracy of the middle Fourier-CNN with vs without pretraining (Figure 8).

    ``pretrained`` and ``baseline`` are :func:`train_curves`-like frames; ``pretrain`` is
    :func:`~trainact.analysis.aggregate.mean_curves` of the reconstruction loss indexed by (stage, epoch),
    drawn in a small right panel, one line per stage.
    """
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(10, 4), constrained_layout=True)
        grid = fig.add_gridspec(1, 3)
        ax_acc = fig.add_subplot(grid[0, :2])
        ax_rec = fig.add_subplot(grid[0, 2])
        _band(ax_acc, baseline.index.to_numpy(), baseline, "val_acc", COLORS["fourier"], "Fourier-CNN, no pretraining")
        _band(
            ax_acc,
            pretrained.index.to_numpy(),
            pretrained,
            "val_acc",
            COLORS["pretrained"],
            "Fourier-CNN, autoencoder pretraining",
        )
        ax_acc.set(title="Validation accuracy (middle Fourier-CNN)", xlabel="epoch", ylabel="accuracy")
        ax_acc.legend(loc="lower right")
        stages = list(pretrain.index.get_level_values("stage").unique())
        shades = plt.get_cmap("Greens")(np.linspace(0.45, 0.95, len(stages)))
        for stage, shade in zip(stages, shades):
            frame = pretrain.xs(stage, level="stage")
            _band(ax_rec, frame.index.to_numpy(), frame, "loss", shade, f"stage {stage}")
        ax_rec.set(title="Pretraining: reconstruction loss", xlabel="pretraining epoch", ylabel="loss")
        _integer_ticks(ax_acc, ax_rec)
        ax_rec.legend(loc="upper right")
        fig.suptitle(f"Figure 8: autoencoder pretraining ({_seed_note(pretrained, baseline)})")
    return fig


def plot_pso(pso: pd.DataFrame, reference: pd.DataFrame, reference_best: float) -> Figure:
    """Accuracy of PSO's global best particle per generation vs RMSProp (Figure 9).

    ``pso`` is :func:`~trainact.analysis.aggregate.mean_curves` of ``test_acc``/``train_acc`` by generation;
    ``reference`` the RMSProp-trained middle CNN's curves (its validation accuracy per epoch goes on a
    secondary x axis at the top) and ``reference_best`` its best validation accuracy (mean over
    seeds), drawn as a horizontal line.
    """
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
        x = pso.index.to_numpy()
        _band(ax, x, pso, "test_acc", COLORS["pso_test"], "PSO: $P_g$ test accuracy")
        _band(ax, x, pso, "train_acc", COLORS["pso_train"], "PSO: $P_g$ training accuracy")
        ax.axhline(
            reference_best,
            color=COLORS["relu"],
            linestyle="--",
            label=f"RMSProp: best validation accuracy ({reference_best:.4f})",
        )
        # What the paper's claim ("about half of BP") and plain guessing look like here.
        ax.axhspan(
            ABOUT_HALF[0] * reference_best,
            ABOUT_HALF[1] * reference_best,
            color=COLORS["relu"],
            alpha=BAND_ALPHA,
            linewidth=0,
            label=f"'about half' of it ({ABOUT_HALF[0]:g}-{ABOUT_HALF[1]:g}x, the paper's claim)",
        )
        ax.axhline(CHANCE_ACCURACY, color="0.5", linewidth=0.8, linestyle="-.", label="chance (10 classes)")
        ax.set(xlabel="PSO generation", ylabel="accuracy", ylim=(0, 1))
        top = ax.twiny()
        top.plot(
            reference.index.to_numpy(),
            reference["val_acc_mean"],
            color=COLORS["relu"],
            linestyle=":",
            alpha=0.7,
            label="RMSProp: validation accuracy per epoch (top axis)",
        )
        top.set_xlabel("RMSProp epoch")
        _integer_ticks(ax, top)
        top.grid(False)
        handles, labels = ax.get_legend_handles_labels()
        more_handles, more_labels = top.get_legend_handles_labels()
        ax.legend(handles + more_handles, labels + more_labels, loc="upper right")  # above the curves: ylim is 0-1
        ax.set_title(f"Figure 9: PSO-trained middle CNN vs RMSProp ({_seed_note(pso)})")
    return fig


def plot_activations(
    documents: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    sizes: Sequence[str],
    x_range: tuple[float, float] = (-4.0, 4.0),
    points: int = 401,
) -> Figure:
    """Learned activation curves: rows = size, columns = activation layer, Fourier and LC vs ReLU.

    Each curve is the mean over the channels (per-channel layers) and seeds of a layer; the band
    spans the 10-90 % quantiles of those curves. Layer ``j`` of a row is the ``j``-th entry of
    the ``layers`` list of the documents. Each panel spans the inputs its layer really sees:
    ``±`` :data:`CURVE_RANGE_RMS` times the largest root mean square of the layer's input at the
    start (``activations.json``'s ``calibration``); documents without it use ``x_range``.
    """
    rows = [s for s in sizes if any((s, a) in documents for a in TRAINABLE)]
    columns = max(len(doc["layers"]) for docs in documents.values() for doc in docs)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            len(rows),
            columns,
            figsize=(3 * columns, 2.6 * len(rows)),
            squeeze=False,
            sharex=True,
            constrained_layout=True,
        )
        for i, size in enumerate(rows):
            for j in range(columns):
                ax = axes[i, j]
                x = np.linspace(*_panel_range(documents, size, j, x_range), points)
                ax.plot(x, np.maximum(x, 0), color=COLORS["relu"], linestyle="--", linewidth=1, label=LABELS["relu"])
                names = []
                for activation in [a for a in TRAINABLE if (size, a) in documents]:
                    layers = [doc["layers"][j] for doc in documents[(size, activation)] if j < len(doc["layers"])]
                    if not layers:
                        continue
                    names.append(layers[0]["name"])
                    values = np.concatenate([layer_curves(layer, x) for layer in layers])
                    low, high = np.quantile(values, [0.1, 0.9], axis=0)
                    ax.fill_between(x, low, high, color=COLORS[activation], alpha=BAND_ALPHA, linewidth=0)
                    ax.plot(x, values.mean(axis=0), color=COLORS[activation], label=LABELS[activation])
                ax.set_title(f"{size}: {' / '.join(dict.fromkeys(names)) or 'no layer'}")
                if i == len(rows) - 1:
                    ax.set_xlabel("x (pre-activation)")
                if j == 0:
                    ax.set_ylabel("act(x)")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
        fig.suptitle(
            "Learned activation functions over each layer's input range "
            "(mean over channels and seeds, band: 10-90 % quantile)"
        )
    return fig


def _panel_range(
    documents: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]], size: str, j: int, default: tuple[float, float]
) -> tuple[float, float]:
    """``±CURVE_RANGE_RMS * r`` for layer ``j`` of ``size``, ``r`` the largest input rms recorded at
    the start over the trainable models and seeds; ``default`` when none is recorded."""
    scales = [
        float(doc["calibration"][j]["input_rms"])
        for activation in TRAINABLE
        for doc in documents.get((size, activation), [])
        if doc.get("calibration") and j < len(doc["calibration"])
    ]
    if not scales or not max(scales) > 0:
        return default
    half = CURVE_RANGE_RMS * max(scales)
    return (-half, half)


def health_curves(results: Path, size: str, activation: str, seeds: Sequence[int]) -> pd.DataFrame:
    """Per (layer, epoch) mean/std/min/max over seeds of a model's activation health columns."""
    frames = {}
    for seed in seeds:
        path = train_history_path(results, size, activation, seed).with_name("activation_health.csv")
        frames[seed] = read_csv_checked(path, HEALTH_REQUIRED)
    return mean_curves(frames, ["layer", "epoch"], list(HEALTH_REQUIRED[2:]))


def plot_health(health: Mapping[tuple[str, str], pd.DataFrame], sizes: Sequence[str]) -> Figure:
    """Activation health during training (not in the paper): rows = size; columns = how far each
    layer's parameters moved from their start (relative L2 distance), the share of its inputs
    outside the Fourier fit interval, and its non-linear share (residual of the best line; ReLU
    on the same inputs dotted grey). Colour = activation, line style = layer (input to output);
    epoch 0 is the start. ``health`` maps (size, activation) -> :func:`health_curves`.
    """
    rows = [s for s in sizes if any((s, a) in health for a in TRAINABLE)]
    panels = (
        ("param_relative_distance", "parameters: ||θ − θ0|| / ||θ0||"),
        ("outside_fit_share", "inputs outside the fit interval (Fourier)"),
        ("nonlinear_share", "non-linear share of the output"),
    )
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            len(rows), len(panels), figsize=(11, 2.8 * len(rows)), squeeze=False, constrained_layout=True
        )
        for i, size in enumerate(rows):
            for activation in [a for a in TRAINABLE if (size, a) in health]:
                frame = health[(size, activation)]
                layers = list(dict.fromkeys(frame.index.get_level_values("layer")))
                order = sorted(layers, key=_layer_order)
                for k, layer in enumerate(order):
                    part = frame.xs(layer, level="layer")
                    x = part.index.to_numpy()
                    style = LAYER_STYLES[k % len(LAYER_STYLES)]
                    for j, (column, _) in enumerate(panels):
                        values = part[f"{column}_mean"]
                        if values.notna().any():
                            axes[i, j].plot(
                                x, values, color=COLORS[activation], linestyle=style,
                                label=f"{LABELS[activation]} {layer}",
                            )  # fmt: skip
                    if activation == "fourier" or "fourier" not in [a for a in TRAINABLE if (size, a) in health]:
                        axes[i, 2].plot(x, part["relu_nonlinear_share_mean"], color=COLORS["relu"], linestyle=":", linewidth=0.8)
            for j, (_, title) in enumerate(panels):
                axes[i, j].set_title(f"{size}: {title}")
                axes[i, j].set_xlabel("epoch")
            _integer_ticks(*axes[i])
        handles, labels = [], []
        for ax in axes.flat:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if label not in labels:
                    handles.append(handle)
                    labels.append(label)
        fig.legend(handles, labels, loc="outside lower center", ncols=4)
        fig.suptitle("Activation health per layer (mean over seeds; grey dotted: ReLU on the same inputs)")
    return fig


def _layer_order(name: str) -> tuple[int, str]:
    """Input-to-output order of activation layer names (stages.0.1 ... then head.*)."""
    return (1 if name.startswith("head") else 0, name)


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in shape)


def structure_table(
    descriptions: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the structure table from ``describe`` output per size and activation.

    ``descriptions[size][activation]`` is ``trainact.nn.models.describe(size, model_cfg, activation)``.
    Rows follow the layers of the first size and activation; the type column joins the distinct
    layer classes over activations, each params cell joins the per-activation counts
    (``relu / fourier / lc``) where they differ. The last row holds the totals.
    """
    sizes = list(descriptions)
    activations = list(descriptions[sizes[0]])
    header = ["layer", "type"] + [f"{s} output" for s in sizes] + [f"{s} params" for s in sizes]
    by_name = {(s, a): {row["layer"]: row for row in descriptions[s][a]} for s in sizes for a in activations}

    def joined(values: Sequence[str]) -> str:
        distinct = list(dict.fromkeys(values))
        return distinct[0] if len(distinct) == 1 else " / ".join(values)

    rows = []
    for layer in [row["layer"] for row in descriptions[sizes[0]][activations[0]]]:
        cells = [
            layer,
            joined([str(by_name[(sizes[0], a)].get(layer, {}).get("type", "-")).split("(")[0] for a in activations]),
        ]
        for s in sizes:
            row = by_name[(s, activations[0])].get(layer)
            cells.append(_shape_text(row["output_shape"]) if row else "-")
        for s in sizes:
            cells.append(
                joined(
                    [str(by_name[(s, a)][layer]["params"]) if layer in by_name[(s, a)] else "-" for a in activations]
                )
            )
        rows.append(cells)
    totals = ["total", " / ".join(activations)] + [""] * len(sizes)
    totals += [joined([str(sum(int(r["params"]) for r in descriptions[s][a])) for a in activations]) for s in sizes]
    rows.append(totals)
    return header, rows


def plot_structure(
    descriptions: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]], input_shape: Sequence[int] = (3, 32, 32)
) -> Figure:
    """The network structure (the paper's missing Figure 1): block diagram and layer table.

    The left panel chains one box per layer group (``stages.0`` ... ``head``) with its layer
    types (``act`` where the activation differs between the compared networks) and its output
    shape per size; the right panel is :func:`structure_table`.
    """
    sizes = list(descriptions)
    activations = list(descriptions[sizes[0]])
    groups: dict[str, list[str]] = {}
    for row in descriptions[sizes[0]][activations[0]]:
        groups.setdefault(row["layer"].rsplit(".", 1)[0], []).append(row["layer"])
    header, rows = structure_table(descriptions)
    cells = {row[0]: row for row in rows}
    act_types = sorted({cells[name][1] for name in cells if " / " in cells[name][1] and name != "total"})

    def box(group: str, layers: list[str]) -> str:
        types = ["act" if cells[name][1] in act_types else cells[name][1] for name in layers]
        shapes = list(dict.fromkeys(cells[layers[-1]][2 : 2 + len(sizes)]))
        return f"{group}: {' -> '.join(types)}\nout {' / '.join(shapes)}"

    boxes = [f"input\n{_shape_text(input_shape)}"] + [box(g, layers) for g, layers in groups.items()]
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(15, max(4.5, 0.3 * len(rows) + 1.2)), constrained_layout=True)
        grid = fig.add_gridspec(1, 2, width_ratios=[1, 2.6])
        ax_blocks = fig.add_subplot(grid[0])
        ax_blocks.set_axis_off()
        step = 1.0 / len(boxes)
        for k, text in enumerate(boxes):
            y = 1 - (k + 0.5) * step
            ax_blocks.text(
                0.5,
                y,
                text,
                ha="center",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round,pad=0.4", "facecolor": "#eef3fa", "edgecolor": COLORS["fourier"]},
            )
            if k:
                ax_blocks.annotate(
                    "",
                    xy=(0.5, y + 0.28 * step),
                    xytext=(0.5, y + 0.72 * step),
                    arrowprops={"arrowstyle": "->", "color": COLORS["relu"]},
                )
        legend = f"sizes: {' / '.join(sizes)}"
        if act_types:
            legend += f"\nact = {act_types[0]}"
        ax_blocks.set_title(legend, fontsize=8)
        ax_table = fig.add_subplot(grid[1])
        ax_table.set_axis_off()
        table = ax_table.table(cellText=rows, colLabels=header, loc="center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        table.auto_set_column_width(list(range(len(header))))
        ax_table.set_title(
            f"Layers, output shape per image and trainable parameters "
            f"({' / '.join(activations)} networks where they differ)"
        )
        fig.suptitle("Network structure (the paper's Figure 1, generated from trainact.nn.models)")
    return fig


# ----------------------------------------------------------------------------------- saving


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


# One function per figure group: reads what the group needs and returns stem -> Figure (not
# saved). trainact.report.figure_list.FIGURES says which group and plotting function make each figure.


def draw_curves(results: Path, params: FigureParams) -> dict[str, Figure]:
    """Figures 2-7: every size present, on validation and on training data."""
    curves = {(size, a): train_curves(results, size, a, params.seeds) for size in params.sizes for a in params.activations}
    return {
        curve_figure_stem(split, size): plot_curves({a: curves[(size, a)] for a in params.activations}, split, size)
        for split, size in CURVE_FIGURES
        if size in params.sizes
    }


def draw_autoencoder(results: Path, params: FigureParams) -> dict[str, Figure]:
    """Figure 8, over the autoencoder's seeds."""
    seeds = params.autoencoder_seeds
    pretrained = mean_curves({s: ok_rows(read_history(autoencoder_history_path(results, s))) for s in seeds}, "epoch", METRICS)
    baseline = train_curves(results, *AUTOENCODER_MODEL, seeds)
    pretrain = mean_curves(
        {s: read_csv_checked(autoencoder_pretrain_path(results, s), PRETRAIN_REQUIRED) for s in seeds},
        ["stage", "epoch"],
        ["loss"],
    )
    return {"fig8": plot_autoencoder(pretrained, baseline, pretrain)}


def draw_pso(results: Path, params: FigureParams) -> dict[str, Figure]:
    """Figure 9, over PSO's seeds, against the RMSProp runs of the same network and seeds."""
    seeds = params.pso_seeds
    pso = mean_curves(
        {s: read_csv_checked(pso_history_path(results, s), PSO_REQUIRED) for s in seeds},
        "generation",
        ["test_acc", "train_acc"],
    )
    reference = train_curves(results, *PSO_MODEL, seeds)
    best = float(np.mean([ok_rows(read_history(train_history_path(results, *PSO_MODEL, s)))["val_acc"].max() for s in seeds]))
    return {"fig9": plot_pso(pso, reference, best)}


def draw_activations(results: Path, params: FigureParams) -> dict[str, Figure]:
    documents = load_activation_documents(results, params.sizes, params.activations, params.seeds)
    return {"activations": plot_activations(documents, params.sizes, params.activation_range)}


def draw_health(results: Path, params: FigureParams) -> dict[str, Figure]:
    health = {
        (size, a): health_curves(results, size, a, params.seeds)
        for size in params.sizes
        for a in params.activations
        if a in TRAINABLE
    }
    return {"activation_health": plot_health(health, params.sizes)}


def draw_structure(results: Path, params: FigureParams) -> dict[str, Figure]:
    """The network structure, generated from trainact.nn.models (needs no results)."""
    from trainact.nn.models import describe

    shown = ["relu"] + [a for a in TRAINABLE if a in params.activations]
    descriptions = {size: {a: describe(size, dict(params.model), activation=a) for a in shown} for size in params.sizes}
    return {"structure": plot_structure(descriptions)}


DRAW_GROUP = {
    "curves": draw_curves,
    "autoencoder": draw_autoencoder,
    "pso": draw_pso,
    "activations": draw_activations,
    "health": draw_health,
    "structure": draw_structure,
}
assert tuple(DRAW_GROUP) == FIGURE_GROUPS, "one drawing function per figure group of trainact.report.figure_list"


def draw_group(group: str, results: Path, params: FigureParams) -> dict[str, Figure]:
    """The figures of one group, stem -> Figure (not saved)."""
    if group not in DRAW_GROUP:
        raise ValueError(f"unknown figure group {group!r}; choose from {list(FIGURE_GROUPS)}")
    return DRAW_GROUP[group](results, params)


def make_figures(results: Path, out_dir: Path, params: FigureParams, progress: bool = True) -> list[Path]:
    """Draw and save every figure of ``params.groups()``; returns the written files."""
    written: list[Path] = []
    for group in tqdm(params.groups(), desc="figures", unit="group", disable=not progress):
        for stem, fig in draw_group(group, results, params).items():
            written += save_figure(fig, out_dir, stem)
            plt.close(fig)
    return written


# --------------------------------------------------------------------------------------- CLI


def _cmd_figures(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params

    try:
        params = FigureParams.from_dict(parse_params(args.params))
        make_figures(args.results, args.out_dir, params, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "figures",
        help="Figures 2-9, learned activations and network structure (PNG + PDF)",
        description="Draw the paper's figures from the results folder. Files per group: curves -> "
        "fig2..fig7 (one per size and split present), autoencoder -> fig8, pso -> fig9, "
        "activations -> activations, structure -> structure; each as .png and .pdf.",
    )
    parser.add_argument("--results", required=True, type=Path, help="results folder (<out>)")
    parser.add_argument("--out-dir", required=True, type=Path, help="where the figures go (<out>/figures)")
    parser.add_argument(
        "--params",
        default="{}",
        help='JSON: {"sizes": [...], "activations": [...], "seeds": [...], "autoencoder_seeds": [...], '
        '"pso_seeds": [...], "figures": [groups], "model": {...}, "activation_range": [lo, hi]}',
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cmd_figures)
