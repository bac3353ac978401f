"""The caption of every figure and table, used verbatim in the paper report and in Snakemake's
HTML report.

Only the paper report and the workflow's HTML-report captions read this module: editing a
caption reruns the paper report and nothing else (no training, no figure).
"""

from __future__ import annotations

from dataclasses import dataclass

from trainact.analysis.labels import SPLIT_WORDS
from trainact.analysis.thresholds import ABOUT_HALF
from trainact.report.figure_list import CURVE_FIGURES, FIGURES


@dataclass(frozen=True)
class Caption:
    """A result's caption: its bold title and its text."""

    title: str
    caption: str


def _curve_caption(split: str, size: str) -> str:
    return (
        f"Accuracy (left) and loss (right) of the {size} models on {SPLIT_WORDS[split]} data "
        "per epoch: standard CNN (ReLU), Fourier-CNN and LC-CNN; the line is the mean over the "
        "seeds, the band spans their minimum and maximum."
    )


#: Figure stem -> caption text (the title is the figure's, :mod:`trainact.report.figure_list`).
FIGURE_CAPTIONS: dict[str, str] = {
    **{f"fig{n}": _curve_caption(split, size) for (split, size), n in CURVE_FIGURES.items()},
    "fig8": "Validation accuracy of the middle Fourier-CNN with autoencoder pretraining "
    "against the same network trained from its ordinary initialisation (same seeds), and "
    "the reconstruction loss of each pretrained convolution stage.",
    "fig9": "Test and training accuracy of the global best particle of the PSO swarm per "
    "generation (middle ReLU CNN), mean over the seeds with a min-max band, against the same "
    "network trained with RMSProp: its best validation accuracy (dashed) and its validation "
    "accuracy per epoch (dotted, top axis). The grey band is the paper's 'about half' of that "
    f"best ({ABOUT_HALF[0]:g}-{ABOUT_HALF[1]:g} of it), the dash-dotted line chance accuracy.",
    "activations": "The trainable activation functions after training (not in the paper), per "
    "network size (rows) and layer (columns), against ReLU, over the input range of the "
    "figure settings.",
    "activation_health": "Per trainable activation layer of every network (not in the paper), "
    "mean over seeds, epoch 0 being the start: how far the activation's parameters moved from "
    "their start (L2 distance over the start's norm), the share of the layer's inputs outside the "
    "interval on which a Fourier layer started as the ReLU fit (where the periodic series "
    "turns back down), and the layer's non-linear share (standard deviation of the residual "
    "after the best straight line, over that of the output; ReLU on the same inputs, dotted "
    "grey, gives about 0.5). Measured on the run's 256 calibration images after each epoch.",
    "structure": "The paper's missing Figure 1, generated from the model code: the networks' "
    "blocks, their layers and the output shape per image of each size; the layer table "
    "(structure_layers.csv) lists every layer's output shape and trainable parameters.",
}
assert set(FIGURE_CAPTIONS) == set(FIGURES), "one caption per figure of trainact.report.figure_list"

CAPTIONS: dict[str, Caption] = {
    "table1": Caption(
        "Table 1",
        "Best training and validation accuracy and loss of each network (per run the maximum "
        "accuracy and the minimum loss over the epochs, each on its own), mean and sample standard "
        "deviation over the seeds, beside the paper's published value and the difference. "
        "Validation is the CIFAR-10 test batch, as in the paper. Accuracies are fractions.",
    ),
    "table2": Caption(
        "Table 2",
        "Improvement of the best accuracy of the Fourier-CNN and the LC-CNN over the standard "
        "(ReLU) CNN of the same size and seed, in absolute percentage points, on validation and "
        "training data; mean and sample standard deviation of the paired per-seed differences, "
        "beside the paper's published value.",
    ),
    "sensitivity": Caption(
        "Sensitivity to the unstated choices",
        "Table 2 (improvement of the Fourier-CNN and LC-CNN over the ReLU CNN of the same size and "
        "seed, percentage points, mean, standard deviation and 95 % t-interval over seeds) for "
        "every combination of the activations' initialisation and the input preprocessing in the "
        "config's sensitivity section, the networks it names trained again with the grid's seeds "
        "and schedule. The paper report says whether a verdict depends on these choices.",
    ),
    "schedule_axis": Caption(
        "The schedule axis",
        "Per length L of the first learning-rate phase (L epochs at the first rate, then the same "
        "short tail), the paired difference of each trainable activation over the ReLU CNN of the "
        "same size and seed, in percentage points, at the final epoch (the verdicts' endpoint) and "
        "best over epochs (the paper's measure): mean and 95 % Student-t interval over seeds (no "
        "interval from one seed); the eval-mode training accuracy at epoch L; and the verdicts of "
        "the claims at each L. The main grid (the train config's schedule; the paper's in the paper "
        "config) is the reference row.",
    ),
    "paper_report": Caption(
        "Reproduction report",
        "Markdown; report.tex beside it, and report.pdf where TeX is installed: what was "
        "reproduced and on what, Tables 1 and 2 against the paper, the figures, the check of each "
        "of the paper's claims against the seed spread, and the deviations from the paper.",
    ),
    **{stem: Caption(FIGURES[stem].title, text) for stem, text in FIGURE_CAPTIONS.items()},
}


def caption_rst(name: str) -> str:
    """The caption of result ``name`` (a figure stem or a key of :data:`CAPTIONS`) as
    reStructuredText, for Snakemake's HTML report."""
    entry = CAPTIONS[name]
    return f"**{entry.title}.** {entry.caption}\n"
