"""The network structure (the paper's missing Figure 1): a block diagram and the layer table,
generated from :func:`trainact.nn.models.describe`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from trainact.report.plot_style import COLORS, STYLE


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
            joined(
                [
                    str(by_name[(sizes[0], a)].get(layer, {}).get("type", "-")).split("(")[0]
                    for a in activations
                ]
            ),
        ]
        for s in sizes:
            row = by_name[(s, activations[0])].get(layer)
            cells.append(_shape_text(row["output_shape"]) if row else "-")
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
    totals = ["total", " / ".join(activations)] + [""] * len(sizes)
    totals += [
        joined([str(sum(int(r["params"]) for r in descriptions[s][a])) for a in activations]) for s in sizes
    ]
    rows.append(totals)
    return header, rows


def plot_structure(
    descriptions: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    input_shape: Sequence[int] = (3, 32, 32),
) -> Figure:
    """The network structure (the paper's missing Figure 1): block diagram and layer table.

    The left panel chains one box per layer group (``stages.0`` ... ``head``) with its layer
    types (``act`` where the activation differs between the compared networks) and its output
    shape per size; the right panel is :func:`structure_table`.
    """
    sizes = list(descriptions)
    activations = list(descriptions[sizes[0]])
    header, rows = structure_table(descriptions)
    cells = {row[0]: row for row in rows}
    act_types = sorted({cells[name][1] for name in cells if " / " in cells[name][1] and name != "total"})
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(15, max(4.5, 0.3 * len(rows) + 1.2)), constrained_layout=True)
        grid = fig.add_gridspec(1, 2, width_ratios=[1, 2.6])
        ax_blocks = fig.add_subplot(grid[0])
        _draw_blocks(ax_blocks, _block_texts(descriptions, cells, act_types, input_shape))
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


def _block_texts(
    descriptions: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    cells: Mapping[str, Sequence[str]],
    act_types: Sequence[str],
    input_shape: Sequence[int],
) -> list[str]:
    """The text of each box of the diagram: the input, then per layer group its layer types and
    output shape per size (``cells``: the rows of :func:`structure_table` by layer name)."""
    sizes = list(descriptions)
    activations = list(descriptions[sizes[0]])
    groups: dict[str, list[str]] = {}
    for row in descriptions[sizes[0]][activations[0]]:
        groups.setdefault(row["layer"].rsplit(".", 1)[0], []).append(row["layer"])

    def box(group: str, layers: list[str]) -> str:
        types = ["act" if cells[name][1] in act_types else cells[name][1] for name in layers]
        shapes = list(dict.fromkeys(cells[layers[-1]][2 : 2 + len(sizes)]))
        return f"{group}: {' -> '.join(types)}\nout {' / '.join(shapes)}"

    return [f"input\n{_shape_text(input_shape)}"] + [box(g, layers) for g, layers in groups.items()]


def _draw_blocks(ax, boxes: Sequence[str]) -> None:
    """The boxes top to bottom, each joined to the one above by an arrow."""
    ax.set_axis_off()
    step = 1.0 / len(boxes)
    for k, text in enumerate(boxes):
        y = 1 - (k + 0.5) * step
        ax.text(
            0.5,
            y,
            text,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.4", "facecolor": "#eef3fa", "edgecolor": COLORS["fourier"]},
        )
        if k:
            ax.annotate(
                "",
                xy=(0.5, y + 0.28 * step),
                xytext=(0.5, y + 0.72 * step),
                arrowprops={"arrowstyle": "->", "color": COLORS["relu"]},
            )
