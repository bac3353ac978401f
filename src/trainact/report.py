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

The report opens with its answer: a "Verdicts" section (the claims of the paper, each with its
verdict, key numbers, seeds and whether it is a preview; then whether any verdict depends on the
choices the paper leaves open, from ``trainact sensitivity``'s JSON given with ``--sensitivity``).
The claims' verdicts (intervals, verdicts, previews) are judged by ``trainact aggregate``
(:mod:`trainact.claims`) and stored in ``summary.json``; this module only formats them. The run's full settings close the report as an appendix.
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
    METRICS,
    MODEL_NAMES,
    SIZES,
    SPLITS,
    TRAINABLE,
    load_published,
)

# The claims engine lives in trainact.claims; its names stay importable from here.
from trainact.claims import (  # noqa: F401
    CLAIMS_RULE,
    INCONCLUSIVE,
    NOT_RUN,
    NOT_SUPPORTED,
    PREVIEW_CONSISTENT,
    PREVIEW_INCONCLUSIVE,
    PREVIEW_INCONSISTENT,
    PREVIEW_RULE,
    SINGLE_SEED_HALF_WIDTH_PP,
    SINGLE_SEED_HALF_WIDTH_RATIO,
    SUPPORTED,
    T_975,
    Evidence,
    combine,
    interval,
    positive_evidence,
    preview_reasons,
    region_verdict,
    verdict_label,
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
    "activation_health": "Activation health per layer during training (not in the paper): parameter movement "
    "from the start, share of inputs outside the Fourier fit interval, non-linear share against ReLU's.",
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


def _comparison_decimals(unit: str) -> tuple[int, bool, str]:
    """Decimals, sign and unit suffix of a comparison: points (signed) or the PSO/RMSProp ratio."""
    return (PP_DECIMALS, True, " pp") if unit == "pp" else (RATIO_DECIMALS, False, "")


def interval_text(comparison: Mapping[str, Any]) -> str:
    """``label: mean unit [low, high]``: a comparison's key numbers (the verdicts table)."""
    decimals, signed, unit = _comparison_decimals(comparison["unit"])
    return (
        f"{comparison['label']}: {fmt(comparison['mean'], decimals, signed)}{unit} "
        f"[{fmt(comparison['low'], decimals, signed)}, {fmt(comparison['high'], decimals, signed)}]"
    )


def evidence_text(comparison: Mapping[str, Any], preview: bool = False) -> str:
    """One evidence line: mean [interval], n (per-seed values), the note, and the verdict when judged."""
    decimals, signed, _ = _comparison_decimals(comparison["unit"])
    per_seed = ", ".join(fmt(v, decimals, signed) for v in comparison["values"])
    text = f"{interval_text(comparison)}, n={len(comparison['values'])} ({per_seed})"
    if comparison.get("note"):
        text += f" ({comparison['note']})"
    if comparison["judged"]:
        text += f" → {verdict_label(comparison['verdict'], preview)}"
    return text


def paper_text(paper: Mapping[str, Any]) -> str:
    """The paper's own numbers for a claim: ``source: label value, ...``."""
    values = [
        f"{v['label']} " + (fmt(v["value"], PP_DECIMALS, True) if v["unit"] == "pp" else fmt(v["value"], ACC_DECIMALS))
        for v in paper["values"]
    ]
    return paper["source"] + (": " + ", ".join(values) if values else "")


def claim_rows(claims: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The claims of ``summary.json`` (judged by ``trainact aggregate``) with every number formatted."""
    rows = []
    for claim in claims:
        evidence = [evidence_text(c, claim["preview"]) for c in claim["comparisons"]]
        evidence += [f"{label}: not run" for label in claim["missing"]]
        if claim["scope"] and claim["outcome"] != NOT_RUN:
            evidence.append(f"Evaluated on the {claim['scope']}; the claim is about every size.")
        rows.append(
            {
                "number": claim["number"],
                "claim": claim["claim"],
                "short": claim["short"],
                "source": claim["source"],
                "paper": paper_text(claim["paper"]),
                "evidence": evidence or ["not run"],
                "key_numbers": [interval_text(c) for c in claim["comparisons"] if c["judged"]] or ["not run"],
                "seeds": str(claim["n_seeds"]) if claim["n_seeds"] is not None else "–",
                "preview": ("yes: " + "; ".join(claim["preview_reasons"])) if claim["preview"] else "no",
                "verdict": claim["verdict"],
            }
        )
    return rows


# ----------------------------------------------------------------------------- sensitivity


SPLIT_WORDS = {"val": "validation", "train": "training"}
SENSITIVITY_NOT_RUN = "Sensitivity to unstated choices: not run."


def load_sensitivity(path: Path | None) -> dict[str, Any] | None:
    """The JSON of ``trainact sensitivity`` (``None`` without a path); a missing file is an error."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected file is missing: {path} (run 'trainact sensitivity' first)")
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, Mapping) or "status" not in document:
        raise ValueError(f"{path}: not a 'trainact sensitivity' result (no 'status')")
    return document


def _sensitivity_context(sensitivity: Mapping[str, Any] | None) -> dict[str, Any]:
    """The sensitivity study with every number formatted; ``run`` false when absent or not run."""
    if not sensitivity or sensitivity.get("status") != "ok":
        return {"run": False, "summary": [SENSITIVITY_NOT_RUN]}
    variants = sensitivity["variants"]
    rows = [
        {
            "variant": v["name"],
            "size": r["size"].capitalize(),
            "split": SPLIT_WORDS[r["split"]],
            "model": MODEL_NAMES[r["activation"]],
            "n": str(r["n_pairs"]),
            "mean": fmt_mean_std(r["mean_pp"], r["std_pp"], PP_DECIMALS, signed=True),
            "interval": f"[{fmt(r['ci_low_pp'], PP_DECIMALS, True)}, {fmt(r['ci_high_pp'], PP_DECIMALS, True)}]",
        }
        for v in variants
        for r in v["table2"]
    ]
    outcome = sensitivity["outcome"]
    return {
        "run": True,
        "summary": [outcome["statement"]] + [c["statement"] for c in outcome["claims"] if c["depends"]],
        "variants": [
            {
                "name": v["name"] + (" (reference)" if v["reference"] else ""),
                "initialisation": v["initialisation"],
                "preprocessing": v["preprocessing"],
                "claims": [c["verdict"] for c in v["claims"]],
            }
            for v in variants
        ],
        "claim_numbers": [c["number"] for c in outcome["claims"]],
        "rows": rows,
        "statements": [c["statement"] for c in outcome["claims"]] + [s["statement"] for s in outcome["signs"]],
        "scope": f"sizes {', '.join(sensitivity['sizes'])}; seeds {', '.join(str(s) for s in sensitivity['seeds'])}",
        "preview": "; ".join(sensitivity["preview_reasons"]) if sensitivity["preview"] else None,
    }


# --------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class ReportParams:
    """The ``--params`` slice of ``trainact report``: the figure parameters (to know which figures
    exist) plus ``preset`` (name of the config preset), ``settings`` (the run's config, shown as
    a key/value list in the appendix and read by :func:`trainact.claims.preview_reasons`) and,
    when no ``--provenance`` file is given, ``dataset`` and ``benchmarks`` paths for
    :func:`trainact.provenance.collect`."""

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
            *(
                (f"Training runs ({row['runs']})", f"{row['device']}; activation kernels {row['kernels']}; {row['determinism']}")
                for row in provenance.get("run_devices") or []
            ),
            ("CPU", f"{hardware['cpu']} ({hardware['cores']} logical cores)"),
            ("Memory", f"{hardware['memory_gib']} GiB" if hardware.get("memory_gib") else MISSING),
            ("GPU of the provenance job's machine", ", ".join(hardware["gpus"]) + f" (CUDA {hardware['cuda']})" if hardware["gpus"] else "none"),
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
    sensitivity: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one context both templates render (every number already formatted).

    ``sensitivity``: the JSON of ``trainact sensitivity`` (absent or ``"status": "not run"``: the
    report says the study was not run).
    """
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
        "claims": claim_rows(summary["claims"]),
        "claims_rule": summary["definitions"]["claims"],
        "preview_rule": summary["definitions"]["claims_preview"],
        "sensitivity": _sensitivity_context(sensitivity),
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
    sensitivity: Path | None = None,
) -> dict[str, Path]:
    """Render the report from ``<tables>/summary.json`` and the figures; build the PDF per ``pdf``.

    Without ``provenance``, it is collected now from ``params.dataset`` and ``params.benchmarks``
    (default ``<results>/benchmarks`` where that folder exists, the workflow's layout).
    ``sensitivity``: path of ``sensitivity.json`` (``trainact sensitivity``); without it the
    sensitivity section says "not run".
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
        sensitivity=load_sensitivity(sensitivity),
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
            sensitivity=args.sensitivity,
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
        "--sensitivity",
        type=Path,
        default=None,
        help="sensitivity.json from 'trainact sensitivity' (without it: the sensitivity section says 'not run')",
    )
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
