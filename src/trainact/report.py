"""The reproduction report: Markdown and LaTeX (and a PDF where TeX is installed).

One context dict (:func:`build_context`) feeds both templates, ``paper/report.md.j2`` and
``paper/report.tex.j2`` (Jinja2, ``StrictUndefined``: a missing key is an error, never an empty
cell). Numbers are formatted here, once, so both documents show the same digits:

* accuracy as a fraction with 4 decimals (as the paper's Table 1), loss with 3 decimals;
* accuracy differences between models (Table 2, claims) in percentage points with 2 decimals;
* PSO/RMSProp accuracy ratio with 3 decimals.

The ``tex`` filter escapes LaTeX's special characters (``\\ & % $ # _ { } ~ ^ < > |``) and maps the
few non-ASCII symbols the text uses (``± × → ≤ ≥ ≈ − – — Δ ω ε ρ Σ √ · ‖ ∂``) to LaTeX; ``texcode``
does the same for ``\\texttt`` content (commands, paths, JSON), printing ASCII as typed and allowing
line breaks after ``, / : =``; the ``md`` filter escapes ``|`` inside Markdown table cells.

Claims check. Each claim of the paper becomes one or more comparisons, each a per-seed quantity
(a paired accuracy difference in points, or the PSO/RMSProp ratio). Over the ``n`` seeds we take
the mean ``m`` and the 95 % Student-t interval ``m ± t(0.975, n-1) · s / sqrt(n)``; with one seed no
spread is known and the interval is ``m ± 2`` points (``± 0.05`` for the ratio), an assumed seed
noise. A comparison is *supported* when the whole interval lies in the claimed region, *not
supported* when it lies entirely outside it, otherwise *inconclusive under the seed spread*. A claim
made of several comparisons is supported when all are, not supported when any is not, otherwise
inconclusive.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from trainact.aggregate import (
    ABOUT_HALF,
    METRICS,
    MODEL_NAMES,
    SIZES,
    SPLITS,
    TRAINABLE,
    load_published,
)
from trainact.figures import AUTOENCODER_FIGURE, FIGURE_NUMBERS, PSO_FIGURE, FigureParams, figure_stems
from trainact.files import atomic_write, write_text_atomic

log = logging.getLogger(__name__)

ACC_DECIMALS = 4
LOSS_DECIMALS = 3
PP_DECIMALS = 2
RATIO_DECIMALS = 3
ROUNDING_NOTE = (
    "Accuracies are fractions with 4 decimals (as in the paper's Table 1), losses have 3 decimals; "
    "differences of accuracy between models (Table 2, claims) are in percentage points (pp) with "
    "2 decimals; reproduced values are mean ± sample standard deviation over seeds (no ± with one seed)."
)
MISSING = "n/a"
TEMPLATE_NAMES = {"md": "report.md.j2", "tex": "report.tex.j2"}
DEFAULT_TEMPLATES = Path(__file__).resolve().parents[2] / "paper"

# Claims check (see the module docstring).
#: Two-sided 95 % quantiles of Student's t by degrees of freedom; beyond 30 the value at 30.
# fmt: off
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
         10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
         18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
         26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}
# fmt: on
SINGLE_SEED_HALF_WIDTH_PP = 2.0
SINGLE_SEED_HALF_WIDTH_RATIO = 0.05
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_RUN = (
    "supported",
    "not supported",
    "inconclusive under the seed spread",
    "not run",
)
CLAIMS_RULE = (
    "Per claim, each comparison is a per-seed quantity: a paired difference of best validation accuracy "
    "(same size and seed) in percentage points, or the PSO/RMSProp accuracy ratio. Over the n seeds we take "
    "the mean m and the 95 % Student-t interval m ± t(0.975, n−1)·s/√n (s the sample standard deviation); "
    f"with one seed the interval is m ± {SINGLE_SEED_HALF_WIDTH_PP:g} pp (± {SINGLE_SEED_HALF_WIDTH_RATIO:g} "
    "for the ratio), an assumed seed-to-seed noise. A comparison is supported when the whole interval lies in "
    "the claimed region (difference > 0; ratio within "
    f'[{ABOUT_HALF[0]:g}, {ABOUT_HALF[1]:g}] for "about half"), not supported when it lies entirely outside, '
    "otherwise inconclusive under the seed spread. A claim made of several comparisons is supported when all "
    "are, not supported when any is not, otherwise inconclusive."
)

FIGURE_CAPTIONS = {
    **{
        f"fig{n}": f"Performance of {size} models on {'validation' if split == 'val' else 'training'} data "
        f"(the paper's Figure {n}): accuracy and loss per epoch, mean over seeds, band min-max."
        for (split, size), n in FIGURE_NUMBERS.items()
    },
    AUTOENCODER_FIGURE: "Validation accuracy of the middle Fourier-CNN with and without autoencoder pretraining "
    "(the paper's Figure 8), and the reconstruction loss of each pretraining stage.",
    PSO_FIGURE: "Accuracy of the global best particle P_g of PSO per generation, test and training data "
    "(the paper's Figure 9), against the RMSProp-trained middle CNN.",
    "activations": "Learned activation functions per size and layer (not in the paper), against ReLU.",
    "structure": "Network structure generated from the model code (the paper's missing Figure 1).",
}


# --------------------------------------------------------------------------------- filters


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


def environment(templates: Path) -> jinja2.Environment:
    """The Jinja2 environment of both templates: strict, no autoescape, ``tex`` and ``md`` filters."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["tex"] = tex_escape
    env.filters["texcode"] = tex_code
    env.filters["md"] = md_cell
    return env


# ------------------------------------------------------------------------------ formatting


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


def _decimals(metric: str) -> int:
    return ACC_DECIMALS if metric.endswith("_acc") else LOSS_DECIMALS


# ---------------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class Evidence:
    """A per-seed quantity summarised by its mean and interval, and the verdict on its region."""

    label: str
    values: tuple[float, ...]
    mean: float
    low: float
    high: float
    verdict: str
    unit: str = "pp"

    def text(self, judged: bool = True) -> str:
        """One evidence line: mean [interval], n (per-seed values), and the verdict when ``judged``."""
        decimals = PP_DECIMALS if self.unit == "pp" else RATIO_DECIMALS
        signed = self.unit == "pp"
        n = len(self.values)
        per_seed = ", ".join(fmt(v, decimals, signed) for v in self.values)
        unit = " pp" if self.unit == "pp" else ""
        return (
            f"{self.label}: {fmt(self.mean, decimals, signed)}{unit} "
            f"[{fmt(self.low, decimals, signed)}, {fmt(self.high, decimals, signed)}], "
            f"n={n} ({per_seed})" + (f" → {self.verdict}" if judged else "")
        )


def interval(values: Sequence[float], single_seed_half_width: float) -> tuple[float, float, float]:
    """Mean and the 95 % t-interval of ``values`` (``mean ± single_seed_half_width`` for one value)."""
    n = len(values)
    if n == 0:
        raise ValueError("no values for an interval")
    mean = sum(values) / n
    if n == 1:
        half = single_seed_half_width
    else:
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = T_975.get(n - 1, T_975[30]) * std / math.sqrt(n)
    return mean, mean - half, mean + half


def region_verdict(low: float, high: float, region: tuple[float, float], open_low: bool = False) -> str:
    """Supported when ``[low, high]`` lies in ``region``, not supported when outside, else inconclusive.

    ``open_low`` makes the region's lower bound exclusive (``difference > 0``).
    """
    lo, hi = region
    inside_low = low > lo if open_low else low >= lo
    if inside_low and high <= hi:
        return SUPPORTED
    if (high <= lo if open_low else high < lo) or low > hi:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def positive_evidence(label: str, values: Sequence[float]) -> Evidence:
    """Evidence for "this per-seed difference (pp) is positive"."""
    values = tuple(float(v) for v in values)
    mean, low, high = interval(values, SINGLE_SEED_HALF_WIDTH_PP)
    return Evidence(label, values, mean, low, high, region_verdict(low, high, (0.0, math.inf), open_low=True))


def combine(verdicts: Sequence[str]) -> str:
    """All supported -> supported; any not supported -> not supported; else inconclusive."""
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if any(v == NOT_SUPPORTED for v in verdicts):
        return NOT_SUPPORTED
    return INCONCLUSIVE


def _per_seed_best(summary: Mapping[str, Any], size: str, activation: str, split: str = "val") -> dict[int, float]:
    return {
        int(r["seed"]): r[f"best_{split}_acc"]
        for r in summary["runs"]
        if r["size"] == size and r["activation"] == activation and _finite(r[f"best_{split}_acc"])
    }


def paired_pp(summary: Mapping[str, Any], size: str, better: str, worse: str) -> list[float]:
    """Per-seed ``100 * (best val acc of better - that of worse)`` over the seeds both have."""
    a, b = _per_seed_best(summary, size, better), _per_seed_best(summary, size, worse)
    return [100.0 * (a[s] - b[s]) for s in sorted(set(a) & set(b))]


def _comparisons(summary: Mapping[str, Any], pairs: Sequence[tuple[str, str, str]]) -> tuple[list[Evidence], list[str]]:
    """Evidence for each (size, better, worse) whose runs exist, and the labels of missing ones."""
    evidence, missing = [], []
    for size, better, worse in pairs:
        label = f"{size}: {MODEL_NAMES[better]} − {MODEL_NAMES[worse]}"
        values = paired_pp(summary, size, better, worse)
        if values:
            evidence.append(positive_evidence(label, values))
        else:
            missing.append(label)
    return evidence, missing


def _claim(number: int, claim: str, source: str, paper: str, evidence: list[str], verdict: str) -> dict[str, Any]:
    return {
        "number": number,
        "claim": claim,
        "source": source,
        "paper": paper,
        "evidence": evidence,
        "verdict": verdict,
    }


def _comparison_claim(
    number: int, claim: str, source: str, paper: str, summary: Mapping[str, Any], pairs: Sequence[tuple[str, str, str]]
) -> dict[str, Any]:
    evidence, missing = _comparisons(summary, pairs)
    texts = [e.text() for e in evidence] + [f"{label}: not run" for label in missing]
    verdict = NOT_RUN if missing else combine([e.verdict for e in evidence])
    return _claim(number, claim, source, paper, texts, verdict)


def evaluate_claims(summary: Mapping[str, Any], published: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The four claims of the paper, each with its evidence over seeds and a verdict (see module doc)."""
    published = published if published is not None else load_published()
    paper_t1 = {(r["size"], r["activation"]): r["val_acc"] for r in published["table1"]}
    paper_t2 = {(r["size"], r["split"], r["activation"]): r["improvement_pp"] for r in published["table2"]}
    claims = []

    pairs = [(size, activation, "relu") for size in SIZES for activation in TRAINABLE]
    paper = "Table 2 (validation, pp): " + "; ".join(
        f"{size} Fourier {fmt(paper_t2[(size, 'val', 'fourier')], PP_DECIMALS, True)}, "
        f"LC {fmt(paper_t2[(size, 'val', 'lc')], PP_DECIMALS, True)}"
        for size in SIZES
    )
    claims.append(
        _comparison_claim(
            1,
            "Trainable activations (Fourier-CNN and LC-CNN) reach a higher validation accuracy than the ReLU CNN "
            "at every size.",
            "Section 3",
            paper,
            summary,
            pairs,
        )
    )

    pairs = [
        ("small", "fourier", "lc"),
        ("small", "fourier", "relu"),
        ("large", "lc", "fourier"),
        ("large", "lc", "relu"),
    ]
    paper = (
        f"Table 1 (validation accuracy): small Fourier {paper_t1[('small', 'fourier')]:.4f}, "
        f"LC {paper_t1[('small', 'lc')]:.4f}, CNN {paper_t1[('small', 'relu')]:.4f}; large LC "
        f"{paper_t1[('large', 'lc')]:.4f}, Fourier {paper_t1[('large', 'fourier')]:.4f}, "
        f"CNN {paper_t1[('large', 'relu')]:.4f}"
    )
    claims.append(
        _comparison_claim(
            2,
            "Fourier-CNN is the best of the three on small networks, LC-CNN the best on large networks "
            "(validation accuracy).",
            "Sections 3 and 6",
            paper,
            summary,
            pairs,
        )
    )

    claim3 = "Autoencoder pretraining improves the middle Fourier-CNN (higher best validation accuracy)."
    autoencoder = summary.get("autoencoder", {"status": NOT_RUN})
    if autoencoder.get("status") != "ok":
        claims.append(_claim(3, claim3, "Sections 5.1 and 6", "Figure 8 only (no numbers)", ["not run"], NOT_RUN))
    else:
        rows = autoencoder["per_seed"]
        best = positive_evidence("best val acc, pretrained − not pretrained", [r["diff_best_val_acc_pp"] for r in rows])
        first = positive_evidence("epoch-1 val acc (context)", [r["diff_first_val_acc_pp"] for r in rows])
        final = positive_evidence("final val acc (context)", [r["diff_final_val_acc_pp"] for r in rows])
        claims.append(
            _claim(
                3,
                claim3,
                "Sections 5.1 and 6",
                "Figure 8 only (no numbers)",
                [best.text(), first.text(judged=False), final.text(judged=False)],
                best.verdict,
            )
        )

    claim4 = "PSO training reaches about half of the accuracy that BP (RMSProp) reaches (middle CNN)."
    pso = summary.get("pso", {"status": NOT_RUN})
    if pso.get("status") != "ok":
        claims.append(_claim(4, claim4, "Sections 5.2 and 6", "Figure 9 only (no numbers)", ["not run"], NOT_RUN))
    else:
        values = tuple(float(r["ratio"]) for r in pso["per_seed"])
        mean, low, high = interval(values, SINGLE_SEED_HALF_WIDTH_RATIO)
        ratio = Evidence(
            "PSO best test acc / RMSProp best val acc",
            values,
            mean,
            low,
            high,
            region_verdict(low, high, ABOUT_HALF),
            unit="ratio",
        )
        claims.append(
            _claim(
                4,
                claim4,
                "Sections 5.2 and 6",
                "Figure 9 only (no numbers)",
                [ratio.text() + f" (claimed region [{ABOUT_HALF[0]:g}, {ABOUT_HALF[1]:g}])"],
                ratio.verdict,
            )
        )
    return claims


# --------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class ReportParams:
    """The ``--params`` slice of ``trainact report``: the figure parameters (to know which figures
    exist) plus ``preset`` (name of the config preset), ``settings`` (the run's config, shown as
    a key/value list) and, when no ``--provenance`` file is given, ``dataset`` and ``benchmarks``
    paths for :func:`trainact.provenance.collect`."""

    figures: FigureParams
    preset: str = "custom"
    settings: Mapping[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    benchmarks: str | None = None

    OWN_KEYS = ("preset", "settings", "dataset", "benchmarks")

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> "ReportParams":
        own = {k: params[k] for k in cls.OWN_KEYS if k in params}
        if "settings" in own and not isinstance(own["settings"], Mapping):
            raise ValueError(f"report parameter 'settings' must be a mapping, got {own['settings']!r}")
        return cls(figures=FigureParams.from_dict(params, ignore=cls.OWN_KEYS), **own)


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as ``("train.epochs", "80")`` pairs, in insertion order."""
    items: list[tuple[str, str]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            items += flatten(value, f"{name}.")
        else:
            items.append((name, json.dumps(value) if not isinstance(value, str) else value))
    return items


def load_deviations(paths: Sequence[Path] | None = None) -> list[dict[str, str]]:
    """Deviation entries (``topic``, ``kind`` = choice | erratum, ``text``) from YAML files.

    Without ``paths``: the packaged ``trainact/deviations.yaml``. Several files are concatenated.
    """
    texts = (
        [resources.files("trainact").joinpath("deviations.yaml").read_text(encoding="utf-8")]
        if not paths
        else [Path(p).read_text(encoding="utf-8") for p in paths]
    )
    entries: list[dict[str, str]] = []
    for text in texts:
        for entry in yaml.safe_load(text) or []:
            if (
                not isinstance(entry, Mapping)
                or set(entry) != {"topic", "kind", "text"}
                or entry["kind"] not in ("choice", "erratum")
            ):
                raise ValueError(f"bad deviation entry {entry!r}: needs exactly topic, kind (choice|erratum), text")
            entries.append({k: str(entry[k]).strip() for k in ("topic", "kind", "text")})
    return entries


def _table1_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for record in summary["table1"]:
        cells = {
            metric: {
                "repro": fmt_mean_std(record[f"{metric}_mean"], record[f"{metric}_std"], _decimals(metric)),
                "paper": fmt(record[f"{metric}_published"], _decimals(metric)),
                "diff": fmt(record[f"{metric}_diff"], _decimals(metric), signed=True),
            }
            for metric in METRICS
        }
        rows.append(
            {
                "model": record["model"],
                "n": str(record["n_seeds"]),
                "diverged": str(record["n_diverged"]),
                "cells": cells,
            }
        )
    return rows


def _table2_rows(summary: Mapping[str, Any], published: Mapping[str, Any]) -> list[dict[str, Any]]:
    paper = {(r["size"], r["split"], r["activation"]): r["improvement_pp"] for r in published["table2"]}
    records = {(r["size"], r["split"], r["activation"]): r for r in summary["table2"]}
    rows = []
    for size in [s for s in SIZES if any(key[0] == s for key in records)]:
        cells = {}
        for split in SPLITS:
            for activation in TRAINABLE:
                record = records.get((size, split, activation))
                cells[f"{split}_{activation}"] = {
                    "repro": (
                        fmt_mean_std(record["mean_pp"], record["std_pp"], PP_DECIMALS, signed=True)
                        if record
                        else "not run"
                    ),
                    "paper": fmt(paper[(size, split, activation)], PP_DECIMALS, signed=True),
                    "diff": fmt(record["diff_pp"], PP_DECIMALS, signed=True) if record else MISSING,
                    "n": str(record["n_pairs"]) if record else "0",
                }
        rows.append({"size": size.capitalize(), "cells": cells})
    return rows


def _autoencoder_context(autoencoder: Mapping[str, Any]) -> dict[str, Any]:
    if autoencoder.get("status") != "ok":
        return {"run": False}
    rows = [
        {
            "seed": str(r["seed"]),
            "first": f"{fmt(r['pretrained_first_val_acc'], ACC_DECIMALS)} / {fmt(r['baseline_first_val_acc'], ACC_DECIMALS)}",
            "best": f"{fmt(r['pretrained_best_val_acc'], ACC_DECIMALS)} / {fmt(r['baseline_best_val_acc'], ACC_DECIMALS)}",
            "final": f"{fmt(r['pretrained_final_val_acc'], ACC_DECIMALS)} / {fmt(r['baseline_final_val_acc'], ACC_DECIMALS)}",
            "diff_best": fmt(r["diff_best_val_acc_pp"], PP_DECIMALS, signed=True),
        }
        for r in autoencoder["per_seed"]
    ]
    stages = [
        {
            "seed": str(s["seed"]),
            "stage": str(s["stage"]),
            "epochs": str(s["epochs"]),
            "first": fmt(s["first_loss"], LOSS_DECIMALS + 1),
            "final": fmt(s["final_loss"], LOSS_DECIMALS + 1),
        }
        for s in autoencoder["pretrain_stages"]
    ]
    diff = autoencoder["diff_best_val_acc_pp"]
    return {
        "run": True,
        "rows": rows,
        "stages": stages,
        "mean_diff_best": fmt_mean_std(diff["mean"], diff["std"], PP_DECIMALS, signed=True),
    }


def _pso_context(pso: Mapping[str, Any]) -> dict[str, Any]:
    if pso.get("status") != "ok":
        return {"run": False}
    rows = [
        {
            "seed": str(r["seed"]),
            "generations": str(r["generations"]),
            "pso_test": fmt(r["pso_best_test_acc"], ACC_DECIMALS),
            "pso_train": fmt(r["pso_best_train_acc"], ACC_DECIMALS),
            "rmsprop": fmt(r["rmsprop_best_val_acc"], ACC_DECIMALS),
            "ratio": fmt(r["ratio"], RATIO_DECIMALS),
        }
        for r in pso["per_seed"]
    ]
    return {
        "run": True,
        "rows": rows,
        "mean_ratio": fmt_mean_std(pso["ratio"]["mean"], pso["ratio"]["std"], RATIO_DECIMALS),
    }


def _provenance_context(provenance: Mapping[str, Any]) -> dict[str, Any]:
    dataset = provenance.get("dataset")
    hardware = provenance["hardware"]
    git = provenance["git"]
    wall = provenance.get("wall_times")
    dirty = {True: " (uncommitted changes)", False: " (clean)", None: ""}[git.get("dirty")]
    return {
        "dataset": (
            None
            if dataset is None
            else {
                "path": dataset["path"],
                "md5": dataset["md5"],
                "source_md5": dataset["source_md5"] or MISSING,
                "matches": {True: "yes", False: "NO", None: "unknown"}[dataset["source_matches_official"]],
                "official_md5": dataset["official_md5"],
            }
        ),
        "hardware": [
            ("CPU", f"{hardware['cpu']} ({hardware['cores']} logical cores)"),
            ("Memory", f"{hardware['memory_gib']} GiB" if hardware.get("memory_gib") else MISSING),
            ("GPU", ", ".join(hardware["gpus"]) + f" (CUDA {hardware['cuda']})" if hardware["gpus"] else "none"),
            ("Platform", hardware["platform"]),
        ],
        "packages": list(provenance["packages"].items()),
        "commit": git["commit"] + dirty,
        "wall_times": (
            None
            if wall is None
            else [{"group": w["group"], "jobs": str(w["jobs"]), "time": fmt_seconds(w["seconds"])} for w in wall]
        ),
        "total_time": None if wall is None else fmt_seconds(sum(w["seconds"] for w in wall)),
    }


def build_context(
    summary: Mapping[str, Any],
    provenance: Mapping[str, Any],
    params: ReportParams,
    figures_dir: Path,
    out_dir: Path,
    deviations: Sequence[Mapping[str, str]],
    pdf_note: str,
    command: str,
    published: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one context both templates render (every number already formatted)."""
    published = published if published is not None else load_published()
    figures_rel = Path(os.path.relpath(Path(figures_dir), Path(out_dir))).as_posix()
    figures = [
        {"stem": stem, "caption": FIGURE_CAPTIONS[stem], "png": f"{figures_rel}/{stem}.png", "pdf": f"{stem}.pdf"}
        for stems in figure_stems(params.figures).values()
        for stem in stems
    ]
    missing = [
        f"{Path(figures_dir) / (f['stem'] + '.' + ext)}"
        for f in figures
        for ext in ("png", "pdf")
        if not (Path(figures_dir) / f"{f['stem']}.{ext}").is_file()
    ]
    if missing:
        raise FileNotFoundError(f"figure file(s) missing: {missing}")
    epochs = sorted({int(r["epochs_ok"]) for r in summary["runs"]})
    return {
        "title": "Reproduction of Liao (2020), Trainable Activation Function in Image Classification",
        "source": summary["source"],
        "preset": params.preset,
        "scope": {
            "sizes": ", ".join(summary["sizes"]),
            "activations": ", ".join(MODEL_NAMES[a] for a in summary["activations"]),
            "seeds": ", ".join(str(s) for s in summary["seeds"]),
            "epochs": ", ".join(str(e) for e in epochs),
            "models": str(len(summary["table1"])),
        },
        "settings": flatten(params.settings),
        "provenance": _provenance_context(provenance),
        "rounding": ROUNDING_NOTE,
        "table1_metrics": [
            {
                "key": m,
                "label": {
                    "train_acc": "Train acc",
                    "train_loss": "Train loss",
                    "val_acc": "Val acc",
                    "val_loss": "Val loss",
                }[m],
            }
            for m in METRICS
        ],
        "table1": _table1_rows(summary),
        "table2": _table2_rows(summary, published),
        "diverged": [
            f"{d['run']}: {d['epochs_ignored']} epoch(s) ignored"
            + (f", diverged at epoch {d['diverged_epoch']}" if d["diverged_epoch"] is not None else "")
            for d in summary["diverged"]
        ],
        "figures_dir": figures_rel,
        "figures": figures,
        "autoencoder": _autoencoder_context(summary["autoencoder"]),
        "pso": _pso_context(summary["pso"]),
        "claims": evaluate_claims(summary, published),
        "claims_rule": CLAIMS_RULE,
        "choices": [d for d in deviations if d["kind"] == "choice"],
        "errata": [d for d in deviations if d["kind"] == "erratum"],
        "pdf_note": pdf_note,
        "command": command,
        "rerun": [
            ("whole paper (results/paper)", "make reproduce"),
            ("reduced presets (results/quick, results/smoke)", "make quick; make smoke"),
            ("this report only (after the runs exist)", "make report"),
            ("this exact rendering", command),
        ],
    }


# -------------------------------------------------------------------------------- rendering


def render(context: Mapping[str, Any], out_dir: Path, templates: Path = DEFAULT_TEMPLATES) -> dict[str, Path]:
    """Render ``report.md`` and ``report.tex`` into ``out_dir`` (atomically); returns their paths."""
    env = environment(Path(templates))
    written = {}
    for kind, name in TEMPLATE_NAMES.items():
        text = env.get_template(name).render(**context)
        path = Path(out_dir) / f"report.{kind}"
        write_text_atomic(path, text)
        written[kind] = path
    return written


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
            raise RuntimeError(f"latexmk failed on {tex_path} (exit {done.returncode}); end of the log:\n{tail}")
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


def make_report(
    results: Path,
    tables: Path,
    figures_dir: Path,
    out_dir: Path,
    params: ReportParams,
    pdf: str = "auto",
    templates: Path = DEFAULT_TEMPLATES,
    provenance: Mapping[str, Any] | None = None,
    deviations: Sequence[Mapping[str, str]] | None = None,
    command: str = "trainact report",
) -> dict[str, Path]:
    """Render the report from ``<tables>/summary.json`` and the figures; build the PDF per ``pdf``.

    Without ``provenance``, it is collected now from ``params.dataset`` and ``params.benchmarks``
    (default ``<results>/benchmarks`` where that folder exists, the workflow's layout).
    """
    from trainact.provenance import collect

    build, note = pdf_plan(pdf)
    summary_path = Path(tables) / "summary.json"
    if not summary_path.is_file():
        raise FileNotFoundError(f"expected file is missing: {summary_path} (run 'trainact aggregate' first)")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    if provenance is None:
        benchmarks = Path(params.benchmarks) if params.benchmarks else Path(results) / "benchmarks"
        provenance = collect(
            dataset=Path(params.dataset) if params.dataset else None,
            benchmarks=benchmarks if params.benchmarks or benchmarks.is_dir() else None,
        )
    context = build_context(
        summary,
        provenance,
        params,
        figures_dir,
        out_dir,
        deviations if deviations is not None else load_deviations(),
        note,
        command,
    )
    written = render(context, out_dir, templates)
    if build:
        written["pdf"] = build_pdf(written["tex"], figures_dir, Path(out_dir) / "report.pdf")
    else:
        print(f"trainact report: {note}", file=sys.stderr)
    log.info("report written: %s (results %s)", ", ".join(str(p) for p in written.values()), results)
    return written


# --------------------------------------------------------------------------------------- CLI


def _cmd_report(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params

    try:
        params = ReportParams.from_dict(parse_params(args.params))
        provenance = json.loads(Path(args.provenance).read_text(encoding="utf-8")) if args.provenance else None
        make_report(
            args.results,
            args.tables,
            args.figures,
            args.out_dir,
            params,
            pdf=args.pdf,
            templates=args.templates,
            provenance=provenance,
            deviations=load_deviations(args.deviations),
            command="trainact " + shlex.join(sys.argv[1:]),
        )
    except (FileNotFoundError, ValueError, RuntimeError, jinja2.TemplateError) as exc:
        raise CLIError(str(exc)) from None
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="report.md, report.tex (and report.pdf) from the tables and figures",
        description="Render the reproduction report. --pdf auto builds report.pdf only when latexmk and "
        "pdflatex are installed (and says so in report.md otherwise).",
    )
    parser.add_argument("--results", required=True, type=Path, help="results folder (<out>)")
    parser.add_argument("--tables", required=True, type=Path, help="folder with summary.json (<out>/tables)")
    parser.add_argument("--figures", required=True, type=Path, help="folder with the figures (<out>/figures)")
    parser.add_argument("--out-dir", required=True, type=Path, help="where the report goes (<out>/paper)")
    parser.add_argument(
        "--params", default="{}", help="JSON: the figure parameters plus preset, settings, dataset, benchmarks"
    )
    parser.add_argument("--pdf", default="auto", choices=("auto", "always", "never"))
    parser.add_argument("--provenance", type=Path, default=None, help="JSON from 'trainact provenance'")
    parser.add_argument(
        "--templates", type=Path, default=DEFAULT_TEMPLATES, help="folder of report.md.j2 and report.tex.j2"
    )
    parser.add_argument(
        "--deviations",
        type=Path,
        nargs="+",
        default=None,
        help="YAML deviation lists (default: the packaged trainact/deviations.yaml)",
    )
    parser.set_defaults(func=_cmd_report)
