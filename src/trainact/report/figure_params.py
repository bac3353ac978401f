"""What ``trainact figures`` draws: its ``--params`` (:class:`FigureParams`) and the files that
follow from them. No plotting here (and no matplotlib), so the paper report can name the
figures without importing the code that draws them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from trainact.names import ACTIVATIONS, SIZES, check_names
from trainact.report.figure_list import FIGURE_GROUPS, figure_groups, figure_tables
from trainact.report.figure_list import figure_stems as _figure_stems

#: Every figure is saved in each of these formats.
FORMATS = ("png", "pdf")


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
    def from_dict(cls, params: Mapping[str, Any], ignore: Sequence[str] = ()) -> FigureParams:
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
                    "activation_range must be (low, high) with low < high, "
                    f"got {values['activation_range']!r}"
                )
            values["activation_range"] = (low, high)
        result = cls(**values)
        object.__setattr__(result, "sizes", tuple(check_names("sizes", result.sizes, SIZES)))
        object.__setattr__(
            result, "activations", tuple(check_names("activations", result.activations, ACTIVATIONS))
        )
        if result.figures is not None:
            check_names("figure groups", result.figures, FIGURE_GROUPS)
        if not result.seeds:
            raise ValueError("no seeds given")
        return result

    def groups(self) -> tuple[str, ...]:
        """The figure groups to draw, in drawing order (:func:`trainact.report.figure_list.figure_groups`)."""
        return figure_groups(
            self.activations, bool(self.autoencoder_seeds), bool(self.pso_seeds), self.figures
        )


def figure_stems(params: FigureParams) -> dict[str, list[str]]:
    """Figure group -> file stems it writes (each as ``.png`` and ``.pdf``)."""
    return _figure_stems(params.groups(), params.sizes)


def output_files(params: Mapping[str, Any] | FigureParams, ignore: Sequence[str] = ()) -> list[str]:
    """File names (relative to the figures folder) that
    :func:`trainact.report.figures.make_figures` writes for ``params``.

    The tests check the command against it; the workflow names the rule's outputs from
    :func:`trainact.report.figure_list.figure_stems` itself.
    """
    if not isinstance(params, FigureParams):
        params = FigureParams.from_dict(params, ignore)
    return [f"{stem}.{ext}" for stems in figure_stems(params).values() for stem in stems for ext in FORMATS]


def table_files(params: Mapping[str, Any] | FigureParams, ignore: Sequence[str] = ()) -> list[str]:
    """File names (relative to the figures folder) of the tables that
    :func:`trainact.report.figures.make_figures` writes beside the figures for ``params`` (the
    structure figure's layer table)."""
    if not isinstance(params, FigureParams):
        params = FigureParams.from_dict(params, ignore)
    return figure_tables(stem for stems in figure_stems(params).values() for stem in stems)
