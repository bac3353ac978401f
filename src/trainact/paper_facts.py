"""The paper's facts and the results layout, written once: names, figures, captions, paths.

Every other place imports from here: the workflow (``workflow/rules/common.smk`` reads it when
Snakemake parses the Snakefile, and writes the captions of Snakemake's HTML report from it),
the aggregation, the figures and the paper report. So this module imports nothing beyond the
standard library: no torch, numpy or matplotlib, and no other trainact module.

A figure's entry says what it shows (its caption, used verbatim in the paper report and in
Snakemake's HTML report), which figure of the paper it reproduces, and which function draws it,
so a figure leads to its code in one hop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# ----------------------------------------------------------------------------------- models

#: Filter numbers of the three convolution stages of each network size (Section 2.2).
PAPER_FILTERS: dict[str, tuple[int, int, int]] = {
    "small": (16, 32, 32),
    "middle": (32, 64, 64),
    "large": (48, 96, 96),
}
#: Network sizes, in the paper's order.
SIZES: tuple[str, ...] = tuple(PAPER_FILTERS)
#: The activations: ReLU, the Fourier series of eq. (2), the linear combination of eq. (7).
ACTIVATIONS: tuple[str, ...] = ("relu", "fourier", "lc")
#: The activations with trainable parameters.
TRAINABLE: tuple[str, ...] = ("fourier", "lc")
#: The paper's name of a network with each activation (Table 1's row labels).
MODEL_NAMES: dict[str, str] = {"relu": "CNN", "fourier": "Fourier-CNN", "lc": "LC-CNN"}
#: The four functions the paper's linear combination mixes (eq. (7)).
LC_CANDIDATES: tuple[str, ...] = ("relu", "sigmoid", "tanh", "linear")
#: Section 5: autoencoder pretraining of the middle Fourier-CNN, PSO training of the middle CNN.
AUTOENCODER_MODEL: tuple[str, str] = ("middle", "fourier")
PSO_MODEL: tuple[str, str] = ("middle", "relu")
#: The paper's "PSO reaches about half of BP's accuracy" (Section 5), as a region of the ratio
#: PSO / RMSProp accuracy (the claims check and Figure 9 use it).
ABOUT_HALF: tuple[float, float] = (0.4, 0.6)
#: Accuracy of guessing among CIFAR-10's ten classes.
CHANCE_ACCURACY = 0.1
#: Data splits of the histories; Table 2's column order (validation first).
SPLITS: tuple[str, ...] = ("val", "train")
SPLIT_WORDS: dict[str, str] = {"val": "validation", "train": "training"}


def model_name(size: str, activation: str) -> str:
    """The paper's row label, e.g. ``"Small Fourier-CNN"``."""
    return f"{size.capitalize()} {MODEL_NAMES[activation]}"


def check_names(kind: str, names: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """``names`` in the paper's order, or ``ValueError`` naming the unknown ones."""
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown {kind} {unknown}; choose from {list(allowed)}")
    return [n for n in allowed if n in set(names)]


# ---------------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Figure:
    """One figure the workflow draws (as ``<stem>.png`` and ``<stem>.pdf``)."""

    stem: str
    #: Bold lead of the caption: "Figure 9" for the paper's figures, a title for our own.
    title: str
    caption: str
    #: The figure group of ``trainact.figures`` that draws it, and the function that does.
    group: str
    drawn_by: str
    #: The paper's figure number, ``None`` for a figure that is not in the paper.
    paper_number: int | None = None


#: (split, size) -> the paper's number of the figure with that size's curves on that split.
CURVE_FIGURES: dict[tuple[str, str], int] = {
    ("val", "large"): 2,
    ("val", "middle"): 3,
    ("val", "small"): 4,
    ("train", "large"): 5,
    ("train", "middle"): 6,
    ("train", "small"): 7,
}


def curve_figure_stem(split: str, size: str) -> str:
    return f"fig{CURVE_FIGURES[(split, size)]}"


def _curve_figure(split: str, size: str, number: int) -> Figure:
    return Figure(
        stem=f"fig{number}",
        title=f"Figure {number}",
        caption=f"Accuracy (left) and loss (right) of the {size} models on {SPLIT_WORDS[split]} data "
        "per epoch: standard CNN (ReLU), Fourier-CNN and LC-CNN; the line is the mean over the "
        "seeds, the band spans their minimum and maximum.",
        group="curves",
        drawn_by="trainact.figures.plot_curves",
        paper_number=number,
    )


#: Every figure, by stem, in the order the reports show them.
FIGURES: dict[str, Figure] = {
    figure.stem: figure
    for figure in (
        *(_curve_figure(split, size, n) for (split, size), n in CURVE_FIGURES.items()),
        Figure(
            stem="fig8",
            title="Figure 8",
            caption="Validation accuracy of the middle Fourier-CNN with autoencoder pretraining "
            "against the same network trained from its ordinary initialisation (same seeds), and "
            "the reconstruction loss of each pretrained convolution stage.",
            group="autoencoder",
            drawn_by="trainact.figures.plot_autoencoder",
            paper_number=8,
        ),
        Figure(
            stem="fig9",
            title="Figure 9",
            caption="Test and training accuracy of the global best particle of the PSO swarm per "
            "generation (middle ReLU CNN), mean over the seeds with a min-max band, against the same "
            "network trained with RMSProp: its best validation accuracy (dashed) and its validation "
            "accuracy per epoch (dotted, top axis). The grey band is the paper's 'about half' of that "
            f"best ({ABOUT_HALF[0]:g}-{ABOUT_HALF[1]:g} of it), the dash-dotted line chance accuracy.",
            group="pso",
            drawn_by="trainact.figures.plot_pso",
            paper_number=9,
        ),
        Figure(
            stem="activations",
            title="Learned activations",
            caption="The trainable activation functions after training (not in the paper), per "
            "network size (rows) and layer (columns), against ReLU, over the input range of the "
            "figure settings.",
            group="activations",
            drawn_by="trainact.figures.plot_activations",
        ),
        Figure(
            stem="activation_health",
            title="Activation health",
            caption="Per trainable activation layer of every network (not in the paper), mean over "
            "seeds, epoch 0 being the start: how far the activation's parameters moved from their "
            "start (L2 distance over the start's norm), the share of the layer's inputs outside the "
            "interval on which a Fourier layer started as the ReLU fit (where the periodic series "
            "turns back down), and the layer's non-linear share (standard deviation of the residual "
            "after the best straight line, over that of the output; ReLU on the same inputs, dotted "
            "grey, gives about 0.5). Measured on the run's 256 calibration images after each epoch.",
            group="health",
            drawn_by="trainact.figures.plot_health",
        ),
        Figure(
            stem="structure",
            title="Network structure",
            caption="The paper's missing Figure 1, generated from the model code: layers, output "
            "shapes and parameter counts of the small, middle and large networks.",
            group="structure",
            drawn_by="trainact.figures.plot_structure",
        ),
    )
}
#: Figure groups of ``trainact.figures``, in drawing order.
FIGURE_GROUPS: tuple[str, ...] = tuple(dict.fromkeys(f.group for f in FIGURES.values()))


def figure_groups(
    activations: Iterable[str], autoencoder: bool, pso: bool, chosen: Iterable[str] | None = None
) -> tuple[str, ...]:
    """The figure groups a run draws: ``chosen`` (in drawing order) when given, else every group
    whose inputs the run has: the Section 5 figures only when their experiments run, the
    activation figures only with a trainable activation."""
    if chosen is not None:
        chosen = set(chosen)
        return tuple(g for g in FIGURE_GROUPS if g in chosen)
    wanted = {"curves", "structure"}
    if autoencoder:
        wanted.add("autoencoder")
    if pso:
        wanted.add("pso")
    if any(a in TRAINABLE for a in activations):
        wanted.update(("activations", "health"))
    return tuple(g for g in FIGURE_GROUPS if g in wanted)


def figure_stems(groups: Iterable[str], sizes: Iterable[str]) -> dict[str, list[str]]:
    """Figure group -> the stems it writes: the curve figures of the sizes present (validation
    first, large to small, as the paper numbers them), one figure for every other group."""
    sizes = set(sizes)
    return {
        group: [f"fig{n}" for (_, size), n in CURVE_FIGURES.items() if size in sizes]
        if group == "curves"
        else [f.stem for f in FIGURES.values() if f.group == group]
        for group in groups
    }


# ------------------------------------------------------------------------- tables and report


@dataclass(frozen=True)
class Caption:
    """The caption of a result that is not a figure (a table, the paper report)."""

    title: str
    caption: str


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
    **{stem: Caption(f.title, f.caption) for stem, f in FIGURES.items()},
}


def caption_rst(name: str) -> str:
    """The caption of result ``name`` (a figure stem or a key of :data:`CAPTIONS`) as
    reStructuredText, for Snakemake's HTML report."""
    entry = CAPTIONS[name]
    return f"**{entry.title}.** {entry.caption}\n"


# ------------------------------------------------------------------------------ the results

#: The paper's published Table 1 and Table 2, as data beside this module.
PUBLISHED_TABLES = "published_tables.json"
#: Folders of a results root (``<out>``).
TABLES_DIR, FIGURES_DIR, PAPER_REPORT_DIR = "tables", "figures", "paper"
#: The files of ``<out>/tables`` that ``trainact aggregate`` writes.
TABLE_FILES: tuple[str, ...] = ("table1.csv", "table1.json", "table2.csv", "table2.json", "runs.csv", "summary.json")
#: The files of ``<out>/tables`` that ``trainact sensitivity`` writes.
SENSITIVITY_FILES: tuple[str, ...] = ("sensitivity.json", "sensitivity.csv")
#: The files of ``<out>/tables`` that ``trainact schedule-axis`` writes, and its figure's stem.
SCHEDULE_AXIS_FILES: tuple[str, ...] = ("schedule_axis.json", "schedule_axis.csv")
SCHEDULE_AXIS_FIGURE = "schedule_axis"


def train_run_dir(size: str, activation: str, seed: int | str) -> str:
    """A training run's folder, relative to the results root."""
    return f"train/{size}-{activation}/seed{seed}"


def autoencoder_run_dir(seed: int | str) -> str:
    """An autoencoder run's folder (pretraining; fine-tuning in its ``finetune`` folder)."""
    return f"autoencoder/seed{seed}"


def pso_run_dir(seed: int | str) -> str:
    return f"pso/seed{seed}"
