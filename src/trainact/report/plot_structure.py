"""The network structure (the paper's missing Figure 1): a block diagram drawn for the report's
full text width, and the layer table the report prints as a table of its own, both generated
from :func:`trainact.nn.models.describe`.

The diagram is drawn :data:`trainact.report.page.TEXT_WIDTH_IN` wide with text of
:data:`trainact.report.page.MIN_FONT_PT` or more, so the report includes it at scale 1. The
layer table is not drawn in the picture (at the picture's printed scale its text was 4 pt): it is
:mod:`trainact.report.structure_table`, which the figures rule writes beside the figure and the
report prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from trainact.analysis.labels import MODEL_NAMES
from trainact.report.page import MIN_FONT_PT, TEXT_WIDTH_IN
from trainact.report.plot_style import COLORS, STYLE
from trainact.report.structure_table import Descriptions, layer_class, shape_text

#: Boxes per row of the diagram: three boxes of a 17 cm row hold the longest layer names at 8 pt.
BOXES_PER_ROW = 3
#: Height of one row of boxes, and of the title, in inches.
ROW_HEIGHT_IN = 1.25
TITLE_HEIGHT_IN = 0.5
#: The word the diagram uses for the layer whose class differs between the compared networks.
ACT = "act"


def _shapes_text(shapes: Sequence[Sequence[int]]) -> str:
    """Several sizes' output shapes in one: ``(16/32/48)×32×32`` where only the channels differ."""
    distinct = list(dict.fromkeys(tuple(int(v) for v in s) for s in shapes))
    if len(distinct) == 1:
        return shape_text(distinct[0])
    if len({len(s) for s in distinct}) != 1:
        return " / ".join(shape_text(s) for s in distinct)
    dims = []
    for values in zip(*distinct, strict=True):
        values = list(dict.fromkeys(values))
        dims.append(str(values[0]) if len(values) == 1 else "(" + "/".join(str(v) for v in values) + ")")
    return "×".join(dims)


def plot_structure(descriptions: Descriptions, input_shape: Sequence[int] = (3, 32, 32)) -> Figure:
    """The network structure (the paper's missing Figure 1) as a block diagram.

    One box per layer group (``stages.0`` ... ``head``) after the input, chained by arrows,
    :data:`BOXES_PER_ROW` to a row: the group's layer classes (``act`` where the activation
    differs between the compared networks) and its output shape per image for every size
    (``(16/32/48)×16×16``: the channels of the small / middle / large networks). Drawn
    :data:`~trainact.report.page.TEXT_WIDTH_IN` wide, all text at least
    :data:`~trainact.report.page.MIN_FONT_PT`; the layer table is
    :func:`trainact.report.structure_table.structure_table`.
    """
    sizes = list(descriptions)
    activations = list(descriptions[sizes[0]])
    boxes = _block_texts(descriptions, input_shape)
    rows = math.ceil(len(boxes) / BOXES_PER_ROW)
    height = TITLE_HEIGHT_IN + rows * ROW_HEIGHT_IN
    act_classes = _act_classes(descriptions)
    with plt.rc_context({**STYLE, "font.size": MIN_FONT_PT + 1}):
        fig = plt.figure(figsize=(TEXT_WIDTH_IN, height))
        ax = fig.add_axes((0, 0, 1, 1 - TITLE_HEIGHT_IN / height))
        _draw_blocks(ax, boxes, rows)
        legend = f"out: output shape per image of the {' / '.join(sizes)} networks"
        if act_classes:
            named = [f"{c} ({MODEL_NAMES.get(a, a)})" for c, a in zip(act_classes, activations, strict=True)]
            legend += f"\n{ACT}: the activation, {' / '.join(named)}"
        fig.text(
            0.5,
            1 - 0.5 * TITLE_HEIGHT_IN / height,
            legend,
            ha="center",
            va="center",
            fontsize=MIN_FONT_PT + 1,
        )
    return fig


def _act_classes(descriptions: Descriptions) -> list[str]:
    """The classes of the layer that differs between the compared networks (one per activation)."""
    sizes = list(descriptions)
    activations = list(descriptions[sizes[0]])
    first = descriptions[sizes[0]]
    for index in range(len(first[activations[0]])):
        classes = [layer_class(first[a][index]) for a in activations]
        if len(set(classes)) > 1:
            return classes
    return []


def _block_texts(descriptions: Descriptions, input_shape: Sequence[int]) -> list[tuple[str, str]]:
    """(title, body) of each box of the diagram: the input, then per layer group its layer
    classes, one a line, and its output shape per image for every size."""
    sizes = list(descriptions)
    activations = list(descriptions[sizes[0]])
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(descriptions[sizes[0]][activations[0]]):
        groups.setdefault(row["layer"].rsplit(".", 1)[0], []).append(index)

    def box(group: str, indices: list[int]) -> tuple[str, str]:
        classes = []
        for index in indices:
            names = {layer_class(descriptions[sizes[0]][a][index]) for a in activations}
            classes.append(ACT if len(names) > 1 else names.pop())
        last = indices[-1]
        shape = _shapes_text([descriptions[s][activations[0]][last]["output_shape"] for s in sizes])
        return group, "\n".join(classes) + f"\nout {shape}"

    return [("input", shape_text(input_shape))] + [box(g, indices) for g, indices in groups.items()]


def _draw_blocks(ax, boxes: Sequence[tuple[str, str]], rows: int) -> None:
    """The boxes left to right, :data:`BOXES_PER_ROW` to a row, each joined to the one before by
    an arrow from edge to edge (from a row's last box down and back to the next row's first)."""
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    column_width, row_height = 1.0 / BOXES_PER_ROW, 1.0 / rows
    style = {"boxstyle": "round,pad=0.4", "facecolor": "#eef3fa", "edgecolor": COLORS["fourier"]}
    texts = [
        ax.text(
            (k % BOXES_PER_ROW + 0.5) * column_width,
            1 - (k // BOXES_PER_ROW + 0.5) * row_height,
            f"{title}\n{body}",
            ha="center",
            va="center",
            fontsize=MIN_FONT_PT,
            bbox=style,
            linespacing=1.3,
        )
        for k, (title, body) in enumerate(boxes)
    ]
    ax.figure.canvas.draw()  # the boxes' extents, to join them edge to edge
    to_axes = ax.transAxes.inverted()
    extents = [to_axes.transform(t.get_bbox_patch().get_window_extent()) for t in texts]
    line = {"color": COLORS["relu"], "linewidth": 1}
    arrow = {"arrowstyle": "->", "shrinkA": 0, "shrinkB": 0, **line}
    for k in range(1, len(boxes)):
        (left0, bottom0), (right0, _) = extents[k - 1]
        (left1, bottom1), (right1, top1) = extents[k]
        y0, y1 = texts[k - 1].get_position()[1], texts[k].get_position()[1]
        if y0 == y1:
            ax.annotate("", xy=(left1, y1), xytext=(right0, y0), arrowprops=arrow)
        else:
            x0, x1 = (left0 + right0) / 2, (left1 + right1) / 2
            middle = (bottom0 + top1) / 2
            ax.plot([x0, x0, x1], [bottom0, middle, middle], **line)
            ax.annotate("", xy=(x1, top1), xytext=(x1, middle), arrowprops=arrow)
