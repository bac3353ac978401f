"""The layer table of the network structure (the paper's missing Figure 1), generated from
:func:`trainact.nn.models.describe`: the figures rule writes it as ``structure_layers.csv``
(:func:`write_structure_table`) beside the structure figure, and the report prints it as a table
of its own (:func:`read_structure_table`). No matplotlib here: the report reads the table without
importing the drawing code.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainact.analysis.labels import MODEL_NAMES
from trainact.files import atomic_write

Descriptions = Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]


def shape_text(shape: Sequence[int]) -> str:
    """An output shape as printed: ``16×32×32``."""
    return "×".join(str(int(v)) for v in shape)


def layer_class(description: Mapping[str, Any]) -> str:
    """The class of a ``describe`` row's layer (its ``type`` without the arguments)."""
    return str(description["type"]).split("(")[0]


def structure_table(descriptions: Descriptions) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the layer table from ``describe`` output per size and activation.

    ``descriptions[size][activation]`` is ``trainact.nn.models.describe(size, model_cfg, activation)``.
    Rows follow the layers of the first size and activation: the layer, its class (the distinct
    classes over the activations joined by `` / ``), its output shape per image for each size
    (``16×32×32``) and its trainable parameters for each size (the per-activation counts joined by
    `` / `` where they differ). Then one ``total`` row per network, its name in the type column.
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
        cells = [layer, joined([layer_class(by_name[(sizes[0], a)][layer]) for a in activations])]
        for s in sizes:
            row = by_name[(s, activations[0])].get(layer)
            cells.append(shape_text(row["output_shape"]) if row else "-")
        for s in sizes:
            cells.append(
                joined(
                    [
                        str(by_name[(s, a)][layer]["params"]) if layer in by_name[(s, a)] else "-"
                        for a in activations
                    ]
                )
            )
        rows.append(cells)
    for a in activations:
        totals = [str(sum(int(r["params"]) for r in descriptions[s][a])) for s in sizes]
        rows.append(["total", MODEL_NAMES.get(a, a)] + [""] * len(sizes) + totals)
    return header, rows


def write_structure_table(descriptions: Descriptions, path: Path) -> Path:
    """:func:`structure_table` as a CSV file (UTF-8, written atomically); returns its path."""

    def write(tmp: Path) -> None:
        header, rows = structure_table(descriptions)
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)

    return atomic_write(Path(path), write)


def read_structure_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a ``structure_layers.csv`` that :func:`write_structure_table` wrote."""
    with open(path, newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows
