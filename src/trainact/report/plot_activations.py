"""The learned activation curves: each trainable layer's function over the inputs it sees,
against ReLU (a figure of our own; the paper shows none)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from trainact.names import LC_CANDIDATES, TRAINABLE
from trainact.report.plot_style import BAND_ALPHA, COLORS, LABELS, STYLE

#: The learned activation curves span ± this many times the root mean square of each layer's
#: input at the start: the calibrated Fourier fit covers ±3 of it, a little beyond shows where
#: the periodic series turns.
CURVE_RANGE_RMS = 4.0
#: ``kind`` values of ``activations.json`` layers -> activation name.
LAYER_KINDS = {"fourier": "fourier", "lc": "lc", "linearcombination": "lc"}


def layer_curves(layer: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """Values of one saved activation layer at the points ``x``: shape ``(channels, len(x))``.

    ``layer`` is an entry of ``activations.json`` (``kind`` and ``params``); a per-layer
    activation gives one row. Evaluated with the reference formulas of ``trainact.nn.reference``.
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
            f"layer {layer.get('name')!r}: unknown kind {layer.get('kind')!r}; "
            f"expected one of {sorted(LAYER_KINDS)}"
        )
    params = layer["params"]

    def tensor(value: Any) -> torch.Tensor:
        return torch.as_tensor(value, dtype=torch.float64)

    points = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    if kind == "fourier":
        A, omega, a, b = (tensor(params[k]) for k in ("A", "omega", "a", "b"))
        # the calibrated start's fixed scale s (s g(x / s)); absent (1) in older files
        A, omega, a, b = fourier_at_scale(
            A, omega, a, b, float(tensor(params.get("scale", [1.0])).reshape(-1)[0])
        )
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
            values = linear_combination_reference(
                points.expand(1, weights.shape[0], -1), weights, candidates, eps
            )[0]
        else:
            values = linear_combination_reference(points, weights, candidates, eps)[None]
    return np.asarray(values.detach().cpu().numpy(), dtype=float)


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
                x = np.linspace(*_panel_range(documents, size, j, x_range), points)
                _draw_panel(axes[i, j], documents, size, j, x)
                if i == len(rows) - 1:
                    axes[i, j].set_xlabel("x (pre-activation)")
                if j == 0:
                    axes[i, j].set_ylabel("act(x)")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
        fig.suptitle(
            "Learned activation functions over each layer's input range "
            "(mean over channels and seeds, band: 10-90 % quantile)"
        )
    return fig


def _draw_panel(
    ax: Any,
    documents: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    size: str,
    j: int,
    x: np.ndarray,
) -> None:
    """One panel: ReLU dashed, and per trainable activation layer ``j`` of the ``size`` networks
    its mean curve over channels and seeds with the 10-90 % band."""
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


def _panel_range(
    documents: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]],
    size: str,
    j: int,
    default: tuple[float, float],
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
