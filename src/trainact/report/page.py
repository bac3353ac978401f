"""The printed page of the paper report: A4 with 2 cm margins, so a 17 cm text width.

``paper/report.tex.j2`` sets its geometry from :data:`TEXT_WIDTH_CM` (the report's context), and
a figure drawn for the full text width (:data:`TEXT_WIDTH_IN`) is printed at scale 1, so its
font sizes are the printed ones: :data:`MIN_FONT_PT` is the smallest a figure drawn so uses.
No matplotlib here: the report imports this without the plotting code.
"""

from __future__ import annotations

PAPER_WIDTH_CM = 21.0
MARGIN_CM = 2.0
#: The report's text width: every full-width figure is drawn this wide.
TEXT_WIDTH_CM = PAPER_WIDTH_CM - 2 * MARGIN_CM
TEXT_WIDTH_IN = TEXT_WIDTH_CM / 2.54
#: The smallest text of a figure drawn at :data:`TEXT_WIDTH_IN` (the report's footnote size).
MIN_FONT_PT = 8.0
#: The tallest a figure is printed (the templates' ``height=0.4\\textheight``): A4's 29.7 cm less
#: the margins, times 0.4.
MAX_FIGURE_HEIGHT_IN = 0.4 * (29.7 - 2 * MARGIN_CM) / 2.54
