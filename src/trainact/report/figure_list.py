"""Every figure the workflow draws: its stem, its bold title, the paper's figure number and the
function that draws it, so a figure leads to its code in one hop.

The workflow reads this when Snakemake parses the Snakefile (the figures rule's outputs), so it
imports only the standard library and trainact's torch-free name modules. The figures' caption
text is :mod:`trainact.report.captions`, which the drawing code does not read: editing a caption
redraws nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from trainact.names import TRAINABLE


@dataclass(frozen=True)
class Figure:
    """One figure the workflow draws (as ``<stem>.png`` and ``<stem>.pdf``)."""

    stem: str
    #: Bold lead of the caption: "Figure 9" for the paper's figures, a title for our own.
    title: str
    #: The figure group of ``trainact.report.figures`` that draws it, and the plotting function that
    #: does (``trainact.report.<module>.<function>``).
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


def _paper_figure(number: int, group: str, drawn_by: str) -> Figure:
    return Figure(f"fig{number}", f"Figure {number}", group, f"trainact.report.{drawn_by}", number)


def _own_figure(stem: str, title: str, group: str, drawn_by: str) -> Figure:
    return Figure(stem, title, group, f"trainact.report.{drawn_by}")


#: Every figure, by stem, in the order the reports show them.
FIGURES: dict[str, Figure] = {
    figure.stem: figure
    for figure in (
        *(_paper_figure(n, "curves", "plot_curves.plot_curves") for n in CURVE_FIGURES.values()),
        _paper_figure(8, "autoencoder", "plot_section5.plot_autoencoder"),
        _paper_figure(9, "pso", "plot_section5.plot_pso"),
        _own_figure("activations", "Learned activations", "activations", "plot_activations.plot_activations"),
        _own_figure("activation_health", "Activation health", "health", "plot_health.plot_health"),
        _own_figure("structure", "Network structure", "structure", "plot_structure.plot_structure"),
    )
}
#: Figure stem -> the table the figures rule writes beside it (in the figures folder), which the
#: report prints as a table of its own: the structure figure's layer table.
FIGURE_TABLES: dict[str, str] = {"structure": "structure_layers.csv"}
#: Figure groups of ``trainact.report.figures``, in drawing order.
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


def figure_tables(stems: Iterable[str]) -> list[str]:
    """The table files (:data:`FIGURE_TABLES`) that come with the figures ``stems``."""
    return [FIGURE_TABLES[stem] for stem in stems if stem in FIGURE_TABLES]


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
