"""Activation health during training (a figure of our own): how far each trainable layer moved,
how much of its input lies outside the Fourier fit interval, and how non-linear it is."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from trainact.names import TRAINABLE
from trainact.report.plot_style import COLORS, LABELS, STYLE, integer_ticks

#: One line style per activation layer (input to output) in the health figure.
LAYER_STYLES = ("-", "--", "-.", ":")


def plot_health(health: Mapping[tuple[str, str], pd.DataFrame], sizes: Sequence[str]) -> Figure:
    """Activation health during training (not in the paper): rows = size; columns = how far each
    layer's parameters moved from their start (relative L2 distance), the share of its inputs
    outside the Fourier fit interval, and its non-linear share (residual of the best line; ReLU
    on the same inputs dotted grey). Colour = activation, line style = layer (input to output);
    epoch 0 is the start. ``health`` maps (size, activation) -> :func:`trainact.report.figures.health_curves`.
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
                    if activation == "fourier" or "fourier" not in [
                        a for a in TRAINABLE if (size, a) in health
                    ]:
                        axes[i, 2].plot(
                            x,
                            part["relu_nonlinear_share_mean"],
                            color=COLORS["relu"],
                            linestyle=":",
                            linewidth=0.8,
                        )
            for j, (_, title) in enumerate(panels):
                axes[i, j].set_title(f"{size}: {title}")
                axes[i, j].set_xlabel("epoch")
            integer_ticks(*axes[i])
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
