"""The report's PDF: ``report.tex`` compiled with ``latexmk -pdf`` where a TeX engine is installed.

``--pdf auto`` (:func:`pdf_plan`) builds the PDF only when ``latexmk`` and ``pdflatex`` are on
PATH and otherwise says so in the report; ``always`` makes a missing TeX an error, ``never``
skips it. The workflow asks for ``always`` exactly when it lists ``report.pdf`` as an output.

A box wider than the text (LaTeX's "Overfull \\hbox", a line or table running into the margin)
is logged as a warning naming its width and the lines of ``report.tex``
(:func:`overfull_boxes`); the tests build the report and allow none wider than
:data:`OVERFULL_TOLERANCE_PT`.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from trainact.files import atomic_write

log = logging.getLogger(__name__)

#: The widest overfull box a report may have: 1 pt (0.35 mm) past the margin does not show in
#: print, and column widths computed from shares of the line width may round past it by a few
#: hundredths of a point. (TeX reports boxes from 0.1 pt on, its default \hfuzz.)
OVERFULL_TOLERANCE_PT = 1.0
_OVERFULL = re.compile(r"^Overfull \\([hv]box) \(([0-9.]+)pt too (?:wide|high)\) (.*)$", re.MULTILINE)


def overfull_boxes(log_text: str, tolerance_pt: float = 0.0) -> list[tuple[str, float, str]]:
    """The overfull boxes a LaTeX log reports wider (or higher) than ``tolerance_pt``: each as
    ``(kind, points, where)``, e.g. ``("hbox", 121.2, "in paragraph at lines 62--63")``."""
    return [
        (kind, float(points), where)
        for kind, points, where in _OVERFULL.findall(log_text)
        if float(points) > tolerance_pt
    ]


def tex_available() -> bool:
    """Whether ``latexmk`` and ``pdflatex`` are on PATH (the workflow lists report.pdf only then)."""
    return shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None


def build_pdf(
    tex_path: Path, figures_dir: Path, out_pdf: Path, timeout_s: float = 600, log_out: Path | None = None
) -> Path:
    """Compile ``tex_path`` with ``latexmk -pdf`` in a temporary folder (figures copied to
    ``figures/`` there, which the document's ``\\graphicspath`` searches first) and move the PDF
    to ``out_pdf``; the LaTeX log is copied to ``log_out`` when given, and every overfull box
    wider than :data:`OVERFULL_TOLERANCE_PT` is logged as a warning. Raises ``RuntimeError`` with
    the end of the LaTeX log on failure."""
    with tempfile.TemporaryDirectory(prefix="trainact-report-") as tmp:
        work = Path(tmp)
        shutil.copy2(tex_path, work / "report.tex")
        (work / "figures").mkdir()
        for path in Path(figures_dir).glob("*.pdf"):
            shutil.copy2(path, work / "figures" / path.name)
        command = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "report.tex"]
        done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0 or not (work / "report.pdf").is_file():
            log_path = work / "report.log"
            tail = log_path.read_text(errors="replace")[-3000:] if log_path.is_file() else done.stdout[-3000:]
            raise RuntimeError(
                f"latexmk failed on {tex_path} (exit {done.returncode}); end of the log:\n{tail}"
            )
        latex_log = (work / "report.log").read_text(errors="replace")
        for kind, points, where in overfull_boxes(latex_log, OVERFULL_TOLERANCE_PT):
            log.warning("%s: overfull %s, %.1f pt past the text %s", tex_path, kind, points, where)
        if log_out is not None:
            shutil.copy2(work / "report.log", log_out)
        out_pdf = atomic_write(out_pdf, lambda tmp: shutil.copy2(work / "report.pdf", tmp))
    return out_pdf


def pdf_plan(mode: str) -> tuple[bool, str]:
    """Whether to build the PDF for ``--pdf mode`` and the note the report prints about it."""
    if mode not in ("auto", "always", "never"):
        raise ValueError(f"--pdf must be auto, always or never, got {mode!r}")
    if mode == "never":
        return False, "PDF not requested (--pdf never)."
    if tex_available():
        return True, "PDF built from report.tex with latexmk -pdf."
    if mode == "always":
        raise ValueError("--pdf always, but no TeX installation was found (latexmk/pdflatex not on PATH)")
    return False, (
        "No TeX installation found (latexmk/pdflatex not on PATH): report.pdf was not built. "
        "Install latexmk and TeX Live (texlive-latex-base, -recommended, -extra) and rerun."
    )
