"""Figures 8 and 9: the Section 5 experiments (autoencoder pretraining; PSO against RMSProp)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from trainact.analysis.thresholds import ABOUT_HALF, CHANCE_ACCURACY
from trainact.report.plot_style import BAND_ALPHA, COLORS, STYLE, band, integer_ticks, seed_note


def plot_autoencoder(pretrained: pd.DataFrame, baseline: pd.DataFrame, pretrain: pd.DataFrame) -> Figure:
    """Validation accuracy of the middle Fourier-CNN with vs without pretraining (Figure 8).

    ``pretrained`` and ``baseline`` are :func:`trainact.report.figures.train_curves`-like frames;
    ``pretrain`` is :func:`~trainact.analysis.results.mean_curves` of the reconstruction loss indexed
    by (stage, epoch), drawn in a small right panel, one line per stage.
    """
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(10, 4), constrained_layout=True)
        grid = fig.add_gridspec(1, 3)
        ax_acc = fig.add_subplot(grid[0, :2])
        ax_rec = fig.add_subplot(grid[0, 2])
        band(
            ax_acc,
            baseline.index.to_numpy(),
            baseline,
            "val_acc",
            COLORS["fourier"],
            "Fourier-CNN, no pretraining",
        )
        band(
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
            band(ax_rec, frame.index.to_numpy(), frame, "loss", shade, f"stage {stage}")
        ax_rec.set(title="Pretraining: reconstruction loss", xlabel="pretraining epoch", ylabel="loss")
        integer_ticks(ax_acc, ax_rec)
        ax_rec.legend(loc="upper right")
        fig.suptitle(f"Figure 8: autoencoder pretraining ({seed_note(pretrained, baseline)})")
    return fig


def plot_pso(pso: pd.DataFrame, reference: pd.DataFrame, reference_best: float) -> Figure:
    """Accuracy of PSO's global best particle per generation vs RMSProp (Figure 9).

    ``pso`` is :func:`~trainact.analysis.results.mean_curves` of ``test_acc``/``train_acc`` by generation;
    ``reference`` the RMSProp-trained middle CNN's curves (its validation accuracy per epoch goes on a
    secondary x axis at the top) and ``reference_best`` its best validation accuracy (mean over
    seeds), drawn as a horizontal line.
    """
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
        x = pso.index.to_numpy()
        band(ax, x, pso, "test_acc", COLORS["pso_test"], "PSO: $P_g$ test accuracy")
        band(ax, x, pso, "train_acc", COLORS["pso_train"], "PSO: $P_g$ training accuracy")
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
        integer_ticks(ax, top)
        top.grid(False)
        handles, labels = ax.get_legend_handles_labels()
        more_handles, more_labels = top.get_legend_handles_labels()
        ax.legend(
            handles + more_handles, labels + more_labels, loc="upper right"
        )  # above the curves: ylim is 0-1
        ax.set_title(f"Figure 9: PSO-trained middle CNN vs RMSProp ({seed_note(pso)})")
    return fig
