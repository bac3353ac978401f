"""Figures 2-7: accuracy and loss per epoch of the networks of one size, on one split."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from trainact.analysis.labels import SPLIT_WORDS
from trainact.names import ACTIVATIONS
from trainact.report.figure_list import CURVE_FIGURES
from trainact.report.plot_style import COLORS, LABELS, STYLE, band, integer_ticks, seed_note


def plot_curves(curves: Mapping[str, pd.DataFrame], split: str, size: str) -> Figure:
    """Accuracy | loss per epoch of the models of one size on one split (Figures 2-7).

    ``curves`` maps activation -> :func:`trainact.report.figures.train_curves` result. Lines are labelled with
    :data:`LABELS`; the left axes hold accuracy, the right axes loss.
    """
    with plt.rc_context(STYLE):
        fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
        for activation in [a for a in ACTIVATIONS if a in curves]:
            frame = curves[activation]
            x = frame.index.to_numpy()
            for ax, metric in ((ax_acc, "acc"), (ax_loss, "loss")):
                band(ax, x, frame, f"{split}_{metric}", COLORS[activation], LABELS[activation])
        ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
        ax_loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
        integer_ticks(ax_acc, ax_loss)
        ax_acc.legend(loc="lower right")
        number = CURVE_FIGURES[(split, size)]
        fig.suptitle(
            f"Figure {number}: {size} models on {SPLIT_WORDS[split]} data ({seed_note(*curves.values())})"
        )
    return fig
