"""Numbers and text as the reproduction report prints them: rounding, LaTeX and Markdown escaping.

Numbers are formatted here, once, so both documents of :mod:`trainact.report.paper_report` (Markdown and
LaTeX) show the same digits:

* accuracy as a fraction with 4 decimals (as the paper's Table 1), loss with 3 decimals;
* accuracy differences between models (Table 2, claims) in percentage points with 2 decimals;
* PSO/RMSProp accuracy ratio with 3 decimals; differences of epochs with 1 decimal; p-values
  with 3 decimals (``< 0.001`` below).

:func:`tex_escape` (the templates' ``tex`` filter) escapes LaTeX's special characters
(``\\ & % $ # _ { } ~ ^ < > |``) and maps the few non-ASCII symbols the text uses
(``± × → ≤ ≥ ≈ − – — Δ ω ε ρ Σ √ · ‖ ∂``) to LaTeX; :func:`tex_code` (``texcode``) does the same
for ``\\texttt`` content (commands, paths, JSON), printing ASCII as typed and allowing line breaks
after ``, / : =``; :func:`md_cell` (``md``) escapes ``|`` inside Markdown table cells.

The claims' comparisons (``summary.json``'s ``claims``, judged by ``trainact aggregate``) become
text here too (:func:`interval_text`, :func:`key_numbers_text`, :func:`evidence_text`,
:func:`paper_text`); nothing here computes a statistic. An interval is printed only where one was
measured: one seed reads "no interval (1 seed)" (:data:`trainact.analysis.verdicts.NO_INTERVAL`).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Any

from trainact.analysis.verdicts import NO_INTERVAL, verdict_label

ACC_DECIMALS = 4
LOSS_DECIMALS = 3
PP_DECIMALS = 2
RATIO_DECIMALS = 3
EPOCH_DECIMALS = 1
P_DECIMALS = 3
ROUNDING_NOTE = (
    "Accuracies are fractions with 4 decimals (as in the paper's Table 1), losses have 3 decimals; "
    "differences of accuracy between models (Table 2, claims) are in percentage points (pp) with "
    "2 decimals; reproduced values are mean ± sample standard deviation over seeds (no ± with one seed)."
)
MISSING = "n/a"
#: How every preview label of :data:`trainact.analysis.verdicts.PREVIEW_LABELS` begins.
PREVIEW_LEAD = "preview: "


# --------------------------------------------------------------------------------- escaping


TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    '"': "''",
}
TEX_UNICODE = {
    "±": r"$\pm$",
    "×": r"$\times$",
    "→": r"$\rightarrow$",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "≈": r"$\approx$",
    "−": r"$-$",
    "–": "--",
    "—": "---",
    "Δ": r"$\Delta$",
    "ω": r"$\omega$",
    "ε": r"$\varepsilon$",
    "ρ": r"$\rho$",
    "Σ": r"$\Sigma$",
    "π": r"$\pi$",
    "√": r"$\surd$",
    "·": r"$\cdot$",
    "‖": r"$\|$",
    "∂": r"$\partial$",
    "…": r"\dots{}",
    "‘": "`",
    "’": "'",
    "“": "``",
    "”": "''",
    "µ": r"$\mu$",
    "°": r"\textdegree{}",
    "\u00a0": "~",
}


def tex_escape(value: Any) -> str:
    """``value`` as LaTeX text: special characters escaped, known symbols mapped.

    A ``-`` before a digit at the start of a number becomes a math minus; ``--`` is kept as two
    hyphens (no en-dash ligature); letters of Latin-1 pass (``inputenc`` handles them); any other
    character without a mapping becomes ``?`` so that the document always compiles.
    """
    text = str(value)
    out = []
    for i, ch in enumerate(text):
        prev = text[i - 1] if i else ""
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if ch in TEX_SPECIAL:
            out.append(TEX_SPECIAL[ch])
        elif ch == "-" and nxt.isdigit() and not (prev.isalnum() or prev == "."):
            out.append("$-$")
        elif ch == "-" and nxt == "-":
            out.append("-{}")
        elif ch in TEX_UNICODE:
            out.append(TEX_UNICODE[ch])
        elif ord(ch) < 128 or (ord(ch) < 256 and unicodedata.category(ch).startswith("L")):
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


#: Characters that ``\texttt`` prints from the typewriter font's own ASCII slots (OT1 ``cmtt``).
TEX_CODE_CHARS = {ch: f"\\char{ord(ch)}{{}}" for ch in "\\{}~^_<>|"}
TEX_CODE_CHARS.update({"'": r"\char13{}", "`": r"\char18{}"})  # upright quote, grave accent in cmtt
#: After these characters a long code string (a JSON slice, a path) may break across lines.
TEX_CODE_BREAKS = ",/:="


def tex_code(value: Any) -> str:
    """``value`` as the content of ``\\texttt{...}``: every ASCII character printed as itself
    (``{ } \\ ~ ^ _ < > | ' ` `` from the typewriter font, ``" -`` unchanged), ``& % $ #`` escaped,
    line breaks allowed after ``, / : =``; other characters as in :func:`tex_escape`."""
    out = []
    for ch in str(value):
        if ch in TEX_CODE_CHARS:
            out.append(TEX_CODE_CHARS[ch])
        elif ch in '"-':
            out.append(ch)
        else:
            out.append(tex_escape(ch))
        if ch in TEX_CODE_BREAKS:
            out.append(r"\allowbreak{}")
    return "".join(out)


def md_cell(value: Any) -> str:
    """``value`` inside a Markdown table cell: ``|`` escaped, line breaks as ``<br>``."""
    return str(value).replace("|", r"\|").replace("\n", "<br>")


# ---------------------------------------------------------------------------------- numbers


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any, decimals: int, signed: bool = False) -> str:
    """``value`` rounded to ``decimals``; ``+`` on non-negative values when ``signed``; ``n/a`` if missing."""
    if not _finite(value):
        return MISSING
    text = f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"
    if text.startswith("-") and float(text) == 0:  # a tiny negative rounds to zero: no "-0.00"
        text = ("+" if signed else "") + text[1:]
    return text


def fmt_mean_std(mean: Any, std: Any, decimals: int, signed: bool = False) -> str:
    """``mean ± std``, or just ``mean`` when the std is undefined (one seed)."""
    if not _finite(mean):
        return MISSING
    text = fmt(mean, decimals, signed)
    return f"{text} ± {fmt(std, decimals)}" if _finite(std) else text


def fmt_seconds(seconds: Any) -> str:
    """Wall time as ``h:mm:ss``."""
    if not _finite(seconds):
        return MISSING
    total = int(round(seconds))
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def metric_decimals(metric: str) -> int:
    """Decimals of a Table 1 metric: 4 for an accuracy, 3 for a loss."""
    return ACC_DECIMALS if metric.endswith("_acc") else LOSS_DECIMALS


# ----------------------------------------------------------------------------------- claims


def _comparison_decimals(unit: str) -> tuple[int, bool, str]:
    """Decimals, sign and unit suffix of a comparison: points, epochs (signed) or the ratio."""
    return {
        "pp": (PP_DECIMALS, True, " pp"),
        "epochs": (EPOCH_DECIMALS, True, " epochs"),
    }.get(unit, (RATIO_DECIMALS, False, ""))


def interval_bounds_text(low: Any, high: Any, decimals: int, signed: bool) -> str:
    """``[low, high]``, or "no interval (1 seed)" where none was measured (``None`` bounds)."""
    if low is None or high is None:
        return NO_INTERVAL
    return f"[{fmt(low, decimals, signed)}, {fmt(high, decimals, signed)}]"


def p_text(p: Any) -> str:
    """A p-value with 3 decimals, ``< 0.001`` below that."""
    if not _finite(p):
        return MISSING
    return "< 0.001" if p < 10**-P_DECIMALS else fmt(p, P_DECIMALS)


def interval_text(comparison: Mapping[str, Any]) -> str:
    """``label: mean unit [low, high]`` (or ``..., no interval (1 seed)``): a comparison's key numbers."""
    decimals, signed, unit = _comparison_decimals(comparison["unit"])
    bounds = interval_bounds_text(comparison["low"], comparison["high"], decimals, signed)
    mean = f"{comparison['label']}: {fmt(comparison['mean'], decimals, signed)}{unit}"
    return f"{mean}, {bounds}" if bounds == NO_INTERVAL else f"{mean} {bounds}"


def tests_text(comparison: Mapping[str, Any]) -> str:
    """``Holm p 0.012, detectable 2.31 pp``: the comparison's Holm-adjusted wrong-direction p-value
    and its minimum detectable difference; empty with one seed (neither exists)."""
    decimals, _, unit = _comparison_decimals(comparison["unit"])
    parts = []
    if comparison.get("p_holm") is not None:
        parts.append(f"Holm p {p_text(comparison['p_holm'])}")
    if comparison.get("min_detectable") is not None:
        parts.append(f"detectable {fmt(comparison['min_detectable'], decimals)}{unit}")
    return ", ".join(parts)


def key_numbers_text(comparison: Mapping[str, Any], preview: bool = False) -> str:
    """One judged comparison in the verdicts table, kept short for the report's first page: mean,
    interval (none with one seed, where the table's Seeds column says 1), its own verdict (without
    :data:`PREVIEW_LEAD`: the row's verdict and Preview column say it), Holm p and the minimum
    detectable difference."""
    decimals, signed, unit = _comparison_decimals(comparison["unit"])
    text = f"{comparison['label']}: {fmt(comparison['mean'], decimals, signed)}{unit}"
    if comparison["low"] is not None and comparison["high"] is not None:
        text += " " + interval_bounds_text(comparison["low"], comparison["high"], decimals, signed)
    text += f" → {verdict_label(comparison['verdict'], preview).removeprefix(PREVIEW_LEAD)}"
    tests = tests_text(comparison)
    return f"{text} ({tests})" if tests else text


def evidence_text(comparison: Mapping[str, Any], preview: bool = False) -> str:
    """One evidence line: mean [interval], n (per-seed values), the claimed region and note, and
    for a judged comparison its verdict, Holm p and minimum detectable difference."""
    decimals, signed, _ = _comparison_decimals(comparison["unit"])
    per_seed = ", ".join(fmt(v, decimals, signed) for v in comparison["values"])
    text = f"{interval_text(comparison)}, n={len(comparison['values'])} ({per_seed})"
    notes = [f"claimed {comparison['claimed']}"] if comparison.get("claimed") and comparison["judged"] else []
    notes += [comparison["note"]] if comparison.get("note") else []
    if notes:
        text += f" ({'; '.join(notes)})"
    if comparison["judged"]:
        tests = tests_text(comparison)
        text += f" → {verdict_label(comparison['verdict'], preview)}" + (f" ({tests})" if tests else "")
    return text


def paper_text(paper: Mapping[str, Any]) -> str:
    """The paper's own numbers for a claim: ``source: label value, ...``."""
    values = [
        f"{v['label']} "
        + (fmt(v["value"], PP_DECIMALS, True) if v["unit"] == "pp" else fmt(v["value"], ACC_DECIMALS))
        for v in paper["values"]
    ]
    return paper["source"] + (": " + ", ".join(values) if values else "")
