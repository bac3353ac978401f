"""The paper report (``trainact paper-report``): Markdown and LaTeX (and a PDF where TeX is installed).

One context dict (:func:`build_context`) feeds both templates, ``paper/report.md.j2`` and
``paper/report.tex.j2`` (Jinja2, ``StrictUndefined``: a missing key is an error, never an empty
cell). This module assembles that context and renders it; it computes no statistic. The numbers
come from ``summary.json`` (``trainact aggregate``: the tables, the Section 5 experiments and the
verdicts on the paper's claims), ``trainact sensitivity``'s JSON and the provenance; their
rounding and the templates' ``tex``, ``texcode`` and ``md`` filters are :mod:`trainact.report.formatting`,
the PDF build is :mod:`trainact.report.pdf`.

The report opens with its answer: a "Verdicts" section (the claims of the paper, each with its
verdict, key numbers, seeds and whether it is a preview; then whether any verdict depends on the
choices the paper leaves open, from ``trainact sensitivity``'s JSON given with ``--sensitivity``).
The run's full settings close the report as an appendix.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from trainact.analysis.aggregate import FINAL_METRICS, METRICS, load_published
from trainact.analysis.claims import CONVERGENCE_SHARE, NOT_RUN
from trainact.report.figures import FigureParams, figure_stems
from trainact.layout import SCHEDULE_AXIS_FIGURE
from trainact.report.captions import CAPTIONS
from trainact.report.figure_list import FIGURES
from trainact.files import write_text_atomic
from trainact.report.formatting import (
    ACC_DECIMALS,
    EPOCH_DECIMALS,
    LOSS_DECIMALS,
    MISSING,
    PP_DECIMALS,
    RATIO_DECIMALS,
    ROUNDING_NOTE,
    evidence_text,
    fmt,
    fmt_mean_std,
    fmt_seconds,
    interval_bounds_text,
    key_numbers_text,
    md_cell,
    metric_decimals,
    paper_text,
    tex_code,
    tex_escape,
)
from trainact.analysis.labels import MODEL_NAMES, SPLIT_WORDS
from trainact.names import SIZES, SPLITS, TRAINABLE
from trainact.report.pdf import build_pdf, pdf_plan
from trainact.analysis.schedule_axis import DEPENDS, model_name_of

log = logging.getLogger(__name__)

TEMPLATE_NAMES = {"md": "report.md.j2", "tex": "report.tex.j2"}
DEFAULT_TEMPLATES = Path(__file__).resolve().parents[3] / "paper"


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


# ----------------------------------------------------------------------------------- claims


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
                "key_numbers": [key_numbers_text(c, claim["preview"]) for c in claim["comparisons"] if c["judged"]]
                or ["not run"],
                "seeds": str(claim["n_seeds"]) if claim["n_seeds"] is not None else "–",
                "preview": ("yes: " + "; ".join(claim["preview_reasons"])) if claim["preview"] else "no",
                "verdict": claim["verdict"],
            }
        )
    return rows


# ----------------------------------------------------------------------------- sensitivity


SENSITIVITY_NOT_RUN = "Sensitivity to unstated choices: not run."


def load_result(path: Path | None, command: str) -> dict[str, Any] | None:
    """The JSON that ``trainact <command>`` wrote (``None`` without a path); a missing file or one
    without a ``status`` is an error naming the path and the command."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expected file is missing: {path} (run 'trainact {command}' first)")
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, Mapping) or "status" not in document:
        raise ValueError(f"{path}: not a 'trainact {command}' result (no 'status')")
    return document


def load_sensitivity(path: Path | None) -> dict[str, Any] | None:
    """The JSON of ``trainact sensitivity`` (``None`` without a path); a missing file is an error."""
    return load_result(path, "sensitivity")


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
            "interval": interval_bounds_text(r["ci_low_pp"], r["ci_high_pp"], PP_DECIMALS, signed=True),
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


# --------------------------------------------------------------------------- schedule axis


SCHEDULE_AXIS_NOT_RUN = "Schedule axis: not run."


def _schedule_axis_context(axis: Mapping[str, Any] | None, figures_rel: str) -> dict[str, Any]:
    """The schedule axis with every number formatted; ``run`` false when absent or not run."""
    if not axis or axis.get("status") != "ok":
        return {"run": False, "summary": SCHEDULE_AXIS_NOT_RUN, "lines": {}}

    def cell(point: Mapping[str, Any], activation: str, endpoint: str) -> str:
        found = [d for d in point["differences"] if (d["activation"], d["endpoint"]) == (activation, endpoint)]
        if not found or not found[0]["n"]:
            return MISSING
        d = found[0]
        return f"{fmt(d['mean'], PP_DECIMALS, True)} {interval_bounds_text(d['low'], d['high'], PP_DECIMALS, True)}"

    def fit_at_drop(point: Mapping[str, Any]) -> str:
        return ", ".join(
            f"{model_name_of(r['activation'])} {fmt(r['at_drop'], ACC_DECIMALS)}"
            for r in point["train_eval"]
            if r["at_drop"] is not None
        ) or MISSING

    trainable = [a for a in TRAINABLE if a in axis["activations"]]
    rows = []
    for point in axis["points"] + [axis["reference"]]:
        for size in axis["sizes"]:
            sized = {**point, "differences": [d for d in point["differences"] if d["size"] == size],
                     "train_eval": [r for r in point["train_eval"] if r["size"] == size]}  # fmt: skip
            rows.append(
                {
                    "L": f"{point['first_phase']}" + (" (main grid)" if point["reference"] else ""),
                    "size": size.capitalize(),
                    "schedule": point["schedule"],
                    "final": [cell(sized, a, "final") for a in trainable],
                    "best": [cell(sized, a, "best") for a in trainable],
                    "fit_at_drop": fit_at_drop(sized),
                    "claims": {c["number"]: c["verdict"] for c in point["claims"]},
                }
            )
    lines = {int(k): v for k, v in axis["claim_lines"].items() if v != NOT_RUN and "not run" not in v.split(",")[0]}
    return {
        "run": True,
        "summary": (
            f"Schedule axis (Section 9): the same claims with L = {', '.join(str(p['first_phase']) for p in axis['points'])} "
            f"epochs at the first learning rate, each then the same tail; sizes {', '.join(axis['sizes'])}, "
            f"seeds {', '.join(str(s) for s in axis['seeds'])}."
        ),
        "lines": lines,
        "context": axis.get("context", ""),
        "models": [MODEL_NAMES[a] for a in trainable],
        "claim_numbers": sorted(lines),
        "rows": rows,
        "figure": {"png": f"{figures_rel}/{SCHEDULE_AXIS_FIGURE}.png", "pdf": f"{SCHEDULE_AXIS_FIGURE}.pdf",
                   "title": CAPTIONS[SCHEDULE_AXIS_FIGURE].title, "caption": CAPTIONS[SCHEDULE_AXIS_FIGURE].caption},  # fmt: skip
    }


def with_axis_lines(rows: Sequence[Mapping[str, Any]], lines: Mapping[int, str]) -> list[dict[str, Any]]:
    """The claim rows with their line over the schedule axis; a claim whose line says it depends
    on the schedule never reads as a plain verdict: "depends on the schedule (here: ...)"."""
    result = []
    for row in rows:
        line = lines.get(row["number"])
        verdict = row["verdict"]
        if line and line.startswith(DEPENDS):
            verdict = f"{DEPENDS} (at this run's schedule: {verdict})"
        result.append({**row, "axis": line or "–", "verdict": verdict})
    return result


# --------------------------------------------------------------------------------- context


@dataclass(frozen=True)
class ReportParams:
    """The ``--params`` slice of ``trainact paper-report``: the figure parameters (to know which
    figures exist) plus ``preset`` (name of the config preset), ``settings`` (the run's config,
    shown as a key/value list in the appendix; the claims' preview rule judged it in ``trainact
    aggregate``) and, when no ``--provenance`` file is given, ``dataset`` and ``benchmarks``
    paths for :func:`trainact.report.provenance.collect`."""

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
        [resources.files("trainact.report").joinpath("deviations.yaml").read_text(encoding="utf-8")]
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
                "repro": fmt_mean_std(record[f"{metric}_mean"], record[f"{metric}_std"], metric_decimals(metric)),
                "paper": fmt(record[f"{metric}_published"], metric_decimals(metric)),
                "diff": fmt(record[f"{metric}_diff"], metric_decimals(metric), signed=True),
            }
            for metric in METRICS
        }
        final = {
            metric: fmt_mean_std(record[f"final_{metric}_mean"], record[f"final_{metric}_std"], ACC_DECIMALS)
            for metric in FINAL_METRICS
        }
        rows.append(
            {
                "model": record["model"],
                "n": str(record["n_seeds"]),
                "diverged": str(record["n_diverged"]),
                "cells": cells,
                "final": final,
                "late_spread": fmt(record["late_val_acc_spread_mean"], ACC_DECIMALS),
            }
        )
    return rows


def _network_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """Table 1's networks: parameters, optimiser steps per learning rate, training time, device."""
    rows = []
    for record in summary.get("networks", []):
        steps = record["steps_by_learning_rate"]
        rows.append(
            {
                "model": record["model"],
                "parameters": f"{record['parameters']:,}" if record["parameters"] is not None else MISSING,
                "steps": ", ".join(f"{p['steps']:,} @ {p['lr']:g} ({p['epochs']} ep)" for p in steps) if steps else MISSING,
                "seconds": fmt_seconds(record["train_seconds_mean"]),
                "devices": ", ".join(record["devices"]) or MISSING,
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
                    "final": (
                        fmt_mean_std(record["final_mean_pp"], record["final_std_pp"], PP_DECIMALS, signed=True)
                        if record
                        else "not run"
                    ),
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
            "diff_final": fmt(r["diff_final_val_acc_pp"], PP_DECIMALS, signed=True),
            "epochs_to_target": f"{r['pretrained_epochs_to_target']} / {r['baseline_epochs_to_target']}",
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
    best, final = autoencoder["diff_best_val_acc_pp"], autoencoder["diff_final_val_acc_pp"]
    epochs = autoencoder["diff_epochs_to_target"]
    return {
        "run": True,
        "rows": rows,
        "stages": stages,
        "mean_diff_best": fmt_mean_std(best["mean"], best["std"], PP_DECIMALS, signed=True),
        "mean_diff_final": fmt_mean_std(final["mean"], final["std"], PP_DECIMALS, signed=True),
        "mean_diff_epochs": fmt_mean_std(epochs["mean"], epochs["std"], EPOCH_DECIMALS, signed=True),
        "convergence_share": f"{CONVERGENCE_SHARE:g}",
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
            "final_ratio": fmt(r["final_ratio"], RATIO_DECIMALS),
        }
        for r in pso["per_seed"]
    ]
    return {
        "run": True,
        "rows": rows,
        "mean_ratio": fmt_mean_std(pso["ratio"]["mean"], pso["ratio"]["std"], RATIO_DECIMALS),
        "mean_final_ratio": fmt_mean_std(pso["final_ratio"]["mean"], pso["final_ratio"]["std"], RATIO_DECIMALS),
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
    schedule_axis: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one context both templates render (every number already formatted).

    ``sensitivity``: the JSON of ``trainact sensitivity`` (absent or ``"status": "not run"``: the
    report says the study was not run). ``schedule_axis``: the JSON of ``trainact schedule-axis``
    (likewise); its figure must then be in ``figures_dir``.
    """
    published = published if published is not None else load_published()
    figures_rel = Path(os.path.relpath(Path(figures_dir), Path(out_dir))).as_posix()
    figures = [
        {
            "stem": stem,
            "title": FIGURES[stem].title,
            "caption": CAPTIONS[stem].caption,
            "png": f"{figures_rel}/{stem}.png",
            "pdf": f"{stem}.pdf",
        }
        for stems in figure_stems(params.figures).values()
        for stem in stems
    ]
    missing = [
        f"{Path(figures_dir) / (f['stem'] + '.' + ext)}"
        for f in figures
        for ext in ("png", "pdf")
        if not (Path(figures_dir) / f"{f['stem']}.{ext}").is_file()
    ]
    axis = _schedule_axis_context(schedule_axis, figures_rel)
    if axis["run"]:
        missing += [
            str(Path(figures_dir) / f"{SCHEDULE_AXIS_FIGURE}.{ext}")
            for ext in ("png", "pdf")
            if not (Path(figures_dir) / f"{SCHEDULE_AXIS_FIGURE}.{ext}").is_file()
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
        "table1_final_metrics": [
            {"key": m, "label": {"train_acc": "Final train acc", "train_eval_acc": "Final train acc (eval mode)",
                                 "val_acc": "Final val acc"}[m]}
            for m in FINAL_METRICS
        ],  # fmt: skip
        "table1": _table1_rows(summary),
        "networks": _network_rows(summary),
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
        "claims": with_axis_lines(claim_rows(summary["claims"]), axis["lines"]),
        "schedule_axis": axis,
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
    command: str = "trainact paper-report",
    sensitivity: Path | None = None,
    schedule_axis: Path | None = None,
) -> dict[str, Path]:
    """Render the report from ``<tables>/summary.json`` and the figures; build the PDF per ``pdf``.

    Without ``provenance``, it is collected now from ``params.dataset`` and ``params.benchmarks``
    (default ``<results>/benchmarks`` where that folder exists, the workflow's layout).
    ``sensitivity``: path of ``sensitivity.json`` (``trainact sensitivity``); without it the
    sensitivity section says "not run". ``schedule_axis``: path of ``schedule_axis.json``
    (``trainact schedule-axis``); without it the schedule-axis section says "not run".
    """
    from trainact.report.provenance import collect

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
        schedule_axis=load_result(schedule_axis, "schedule-axis"),
    )
    written = render(context, out_dir, templates)
    if build:
        written["pdf"] = build_pdf(written["tex"], figures_dir, Path(out_dir) / "report.pdf")
    else:
        print(f"trainact paper-report: {note}", file=sys.stderr)
    log.info("report written: %s (results %s)", ", ".join(str(p) for p in written.values()), results)
    return written


# --------------------------------------------------------------------------------------- CLI


def _cmd_paper_report(args: argparse.Namespace) -> int:
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
            schedule_axis=args.schedule_axis,
        )
    except (FileNotFoundError, ValueError, RuntimeError, jinja2.TemplateError) as exc:
        raise CLIError(str(exc)) from None
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "paper-report",
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
        "--schedule-axis",
        type=Path,
        default=None,
        help="schedule_axis.json from 'trainact schedule-axis' (without it: that section says 'not run')",
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
    parser.set_defaults(func=_cmd_paper_report)
