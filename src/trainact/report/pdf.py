"""The report's PDF: ``report.tex`` compiled with ``latexmk -pdf`` where a TeX engine is installed.

``--pdf auto`` (:func:`pdf_plan`) builds the PDF only when ``latexmk`` and ``pdflatex`` are on
PATH and otherwise says so in the report; ``always`` makes a missing TeX an error, ``never``
skips it. The workflow asks for ``always`` exactly when it lists ``report.pdf`` as an output.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from trainact.files import atomic_write


def tex_available() -> bool:
    """Whether ``latexmk`` and ``pdflatex`` are on PATH (the workflow lists report.pdf only then)."""
    return shutil.which("latexmk") is not None and shutil.which("pdflatex") is not None


def build_pdf(tex_path: Path, figures_dir: Path, out_pdf: Path, timeout_s: float = 600) -> Path:
    """Compile ``tex_path`` with ``latexmk -pdf`` in a temporary folder (figures copied to
    ``figures/`` there, which the document's ``\\graphicspath`` searches first) and move the PDF
    to ``out_pdf``. Raises ``RuntimeError`` with the end of the LaTeX log on failure."""
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
