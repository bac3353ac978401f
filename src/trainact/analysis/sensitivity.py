"""Sensitivity of the results to choices the paper leaves open (initialisation, preprocessing).

The same networks are trained under several *variants* of the unstated choices; each variant
names, per activation, the results folder (``root``) that holds its runs in the layout of the
main results (``<root>/train/<size>-<activation>/seed<seed>/history.csv``), so a variant can
reuse the main runs for the activations it does not change (e.g. the ReLU CNN, whose
initialisation the choice does not touch). Per variant:

* Table 2 rows: per size, split (val, train) and trainable activation the paired per-seed
  differences of the final epoch, ``100 * (final acc - final acc of the ReLU CNN, same size and
  seed)`` (the verdicts' endpoint, :func:`trainact.analysis.tables.paired_differences_pp`): ``n_pairs``,
  mean, sample std and the 95 % t-interval of :func:`trainact.analysis.statistics.interval` (points; none
  with one seed);
* mean best validation accuracy per size and activation;
* the verdicts of claims 1 and 2 on the sizes present (:func:`trainact.analysis.claims.summarize_claims`,
  the same check ``trainact aggregate`` runs on the main grid, preview-labelled by
  :func:`trainact.analysis.preview.preview_reasons` from the run's config).

Outcome: for each of claims 1 and 2, the verdict under every variant and whether it depends on
the choice; for each size and trainable activation, whether the sign of the mean validation
difference over the ReLU CNN changes across variants.

``trainact sensitivity --params JSON --out-dir DIR`` writes ``DIR/sensitivity.json`` and
``DIR/sensitivity.csv`` (the long Table 2 of every variant). Without variants both are still
written: the JSON says ``"status": "not run"`` and the CSV has its header only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trainact.analysis.claims import summarize_claims
from trainact.analysis.labels import MODEL_NAMES
from trainact.analysis.preview import preview_reasons
from trainact.analysis.results import collect_runs, json_ready
from trainact.analysis.statistics import interval, stats
from trainact.analysis.tables import load_published, paired_differences_pp
from trainact.analysis.verdicts import NOT_RUN as VERDICT_NOT_RUN
from trainact.files import write_text_atomic
from trainact.names import ACTIVATIONS, SIZES, SPLITS, TRAINABLE, check_names

log = logging.getLogger(__name__)

PARAM_KEYS = ("sizes", "activations", "seeds", "reference", "settings", "variants")
VARIANT_KEYS = ("name", "initialisation", "preprocessing", "roots")
CSV_COLUMNS = (
    "variant",
    "initialisation",
    "preprocessing",
    "size",
    "split",
    "activation",
    "n_pairs",
    "mean_pp",
    "std_pp",
    "ci_low_pp",
    "ci_high_pp",
)
#: The claims whose verdicts the study compares across variants (those on Table 1/2 runs).
CLAIMS = (1, 2)
NOT_RUN_RESULT = {"status": "not run", "reason": "no variants given", "variants": []}
DESCRIPTION = (
    "Per variant of the unstated choices (initialisation, preprocessing): Table 2's paired per-seed "
    "differences of the final epoch over the ReLU CNN of the same size and seed (percentage points; mean, "
    "sample std, 95 % Student-t interval, none with one seed), mean best validation accuracy per model, "
    "and the verdicts of claims 1 and 2 on the sizes present; the outcome says whether a verdict, or the "
    "sign of a mean validation difference, changes across variants."
)


# ------------------------------------------------------------------------------ parameters


def _check_variant(variant: Any, activations: Sequence[str]) -> dict[str, Any]:
    if not isinstance(variant, Mapping):
        raise ValueError(
            f"a sensitivity variant must be a mapping with keys {list(VARIANT_KEYS)}, got {variant!r}"
        )
    label = variant.get("name", variant)
    unknown = sorted(set(variant) - set(VARIANT_KEYS))
    missing = [k for k in VARIANT_KEYS if k not in variant]
    if unknown or missing:
        raise ValueError(
            f"sensitivity variant {label!r}: unknown key(s) {unknown}, missing key(s) {missing}; "
            f"needs exactly {list(VARIANT_KEYS)}"
        )
    for key in ("name", "initialisation", "preprocessing"):
        if not isinstance(variant[key], str) or not variant[key]:
            raise ValueError(
                f"sensitivity variant {label!r}: {key} must be a non-empty string, got {variant[key]!r}"
            )
    roots = variant["roots"]
    if not isinstance(roots, Mapping):
        raise ValueError(f"sensitivity variant {label!r}: roots must map activation -> folder, got {roots!r}")
    extra = sorted(set(roots) - set(activations))
    lacking = [a for a in activations if a not in roots]
    if extra or lacking:
        raise ValueError(
            f"sensitivity variant {label!r}: roots has unknown activation(s) {extra} and lacks {lacking}; "
            f"needs one folder for each of {list(activations)}"
        )
    return {**{k: variant[k] for k in VARIANT_KEYS[:3]}, "roots": {a: str(roots[a]) for a in activations}}


def check_params(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The study's parameters, checked and in the paper's order; ``None`` when no variants are given."""
    unknown = sorted(set(params) - set(PARAM_KEYS))
    if unknown:
        raise ValueError(f"unknown sensitivity parameter(s) {unknown}; known: {list(PARAM_KEYS)}")
    variants = params.get("variants") or []
    if not isinstance(variants, list):
        raise ValueError(f"sensitivity parameter 'variants' must be a list, got {variants!r}")
    if not variants:
        return None
    for key in ("sizes", "activations", "seeds"):
        if key not in params:
            raise ValueError(f"sensitivity parameter {key!r} is missing")
    sizes = check_names("sizes", params["sizes"], SIZES)
    activations = check_names("activations", params["activations"], ACTIVATIONS)
    if not sizes:
        raise ValueError("sensitivity parameter 'sizes' is empty")
    if "relu" not in activations or not set(TRAINABLE) & set(activations):
        raise ValueError(
            f"sensitivity activations {activations} need 'relu' (the baseline) and at least one of "
            f"{list(TRAINABLE)}"
        )
    seeds = params["seeds"]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ValueError(f"sensitivity parameter 'seeds' must be a non-empty list of integers, got {seeds!r}")
    settings = params.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise ValueError(
            f"sensitivity parameter 'settings' must be a mapping (the run's config), got {settings!r}"
        )
    checked = [_check_variant(v, activations) for v in variants]
    names = [v["name"] for v in checked]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"sensitivity variant name(s) {duplicates} given more than once")
    reference = params.get("reference", names[0])
    if reference not in names:
        raise ValueError(f"sensitivity reference {reference!r} is not a variant; variants: {names}")
    return {
        "sizes": sizes,
        "activations": activations,
        "seeds": [int(s) for s in seeds],
        "reference": reference,
        "settings": settings,
        "variants": checked,
    }


# ------------------------------------------------------------------------------ per variant


def variant_runs(variant: Mapping[str, Any], sizes: Sequence[str], seeds: Sequence[int]) -> pd.DataFrame:
    """Per-run bests of every (size, activation, seed), each activation read from its own root."""
    frames = []
    for activation, root in variant["roots"].items():
        try:
            frames.append(collect_runs(Path(root), sizes, [activation], seeds))
        except (FileNotFoundError, ValueError) as exc:
            raise type(exc)(f"sensitivity variant {variant['name']!r}: {exc}") from None
    return pd.concat(frames, ignore_index=True)


def table2_rows(runs: pd.DataFrame, sizes: Sequence[str], activations: Sequence[str]) -> list[dict[str, Any]]:
    """Table 2 with intervals: per size, split, trainable activation the paired final-epoch
    differences (pp); ``ci_low_pp``/``ci_high_pp`` are ``None`` with one seed (no interval)."""
    rows = []
    for size in sizes:
        for split in SPLITS:
            for activation in [a for a in TRAINABLE if a in activations]:
                values = [
                    float(v) for v in paired_differences_pp(runs, size, split, activation, endpoint="final")
                ]
                summary = stats(values)
                _, low, high = interval(values) if values else (math.nan,) * 3
                rows.append(
                    {
                        "size": size,
                        "split": split,
                        "activation": activation,
                        "n_pairs": summary["n"],
                        "mean_pp": summary["mean"],
                        "std_pp": summary["std"],
                        "ci_low_pp": low,
                        "ci_high_pp": high,
                    }
                )
    return rows


def best_val_rows(
    runs: pd.DataFrame, sizes: Sequence[str], activations: Sequence[str]
) -> list[dict[str, Any]]:
    """Mean (and sample std, count) over seeds of the best validation accuracy per size and activation."""
    rows = []
    for size in sizes:
        for activation in activations:
            values = runs.loc[(runs["size"] == size) & (runs["activation"] == activation), "best_val_acc"]
            summary = stats(values)
            rows.append(
                {
                    "size": size,
                    "activation": activation,
                    "n_seeds": summary["n"],
                    "mean_best_val_acc": summary["mean"],
                    "std_best_val_acc": summary["std"],
                }
            )
    return rows


def evaluate_variant(
    variant: Mapping[str, Any], study: Mapping[str, Any], published: Mapping[str, Any]
) -> dict[str, Any]:
    """Table 2 with intervals, mean best val acc and the claim 1/2 verdicts of one variant."""
    sizes, activations = study["sizes"], study["activations"]
    runs = variant_runs(variant, sizes, study["seeds"])
    claims = summarize_claims(runs, published, settings=study["settings"], sizes=sizes)
    return {
        **variant,
        "reference": variant["name"] == study["reference"],
        "table2": table2_rows(runs, sizes, activations),
        "best_val_acc": best_val_rows(runs, sizes, activations),
        "claims": [c for c in claims if c["number"] in CLAIMS],
    }


# --------------------------------------------------------------------------------- outcome


def sign(value: Any) -> str:
    """``+``, ``−`` or ``0`` for a finite number, ``n/a`` otherwise."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return "+" if value > 0 else "−" if value < 0 else "0"


def outcome(
    variants: Sequence[Mapping[str, Any]], sizes: Sequence[str], activations: Sequence[str]
) -> dict[str, Any]:
    """Whether each claim's verdict, and each mean validation difference's sign, depends on the variant."""
    claims = [claim_outcome(variants, number) for number in CLAIMS]
    signs = [
        sign_outcome(variants, size, activation)
        for size in sizes
        for activation in [a for a in TRAINABLE if a in activations]
    ]
    return {
        "depends": any(c["depends"] for c in claims),
        "sign_changes": any(s["changes"] for s in signs),
        "statement": _outcome_statement(claims, signs, len(variants), activations),
        "claims": claims,
        "signs": signs,
    }


def claim_outcome(variants: Sequence[Mapping[str, Any]], number: int) -> dict[str, Any]:
    """Claim ``number``'s verdict under each variant and whether it depends on the variant."""
    verdicts = {v["name"]: next(c["verdict"] for c in v["claims"] if c["number"] == number) for v in variants}
    distinct = list(dict.fromkeys(verdicts.values()))
    depends = len(distinct) > 1
    statement = (
        f"The verdict of claim {number} depends on these choices: "
        + ", ".join(f"{name} → {verdict}" for name, verdict in verdicts.items())
        + "."
        if depends
        else f"The verdict of claim {number} is the same under every variant: {distinct[0]}."
    )
    return {
        "number": number,
        "verdicts": verdicts,
        "distinct": distinct,
        "depends": depends,
        "statement": statement,
    }


def sign_outcome(variants: Sequence[Mapping[str, Any]], size: str, activation: str) -> dict[str, Any]:
    """The sign of the mean validation difference of ``activation`` over ReLU at ``size`` under
    each variant, and whether it changes."""
    per_variant = {
        v["name"]: sign(
            next(
                r["mean_pp"]
                for r in v["table2"]
                if (r["size"], r["split"], r["activation"]) == (size, "val", activation)
            )
        )
        for v in variants
    }
    known = {s for s in per_variant.values() if s != "n/a"}
    changes = len(known) > 1
    what = f"mean validation difference {MODEL_NAMES[activation]} − {MODEL_NAMES['relu']} ({size})"
    statement = (
        f"The sign of the {what} changes across variants: "
        + ", ".join(f"{name} {s}" for name, s in per_variant.items())
        + "."
        if changes
        else f"The sign of the {what} is the same under every variant: "
        + (known.pop() if known else "n/a")
        + "."
    )
    return {
        "size": size,
        "split": "val",
        "activation": activation,
        "signs": per_variant,
        "changes": changes,
        "statement": statement,
    }


def _outcome_statement(
    claims: Sequence[Mapping[str, Any]],
    signs: Sequence[Mapping[str, Any]],
    n_variants: int,
    activations: Sequence[str],
) -> str:
    """The study's answer in one or two sentences: which verdicts depend on the choices, which signs
    change."""
    depending = [c["number"] for c in claims if c["depends"]]
    plural = "s" if n_variants != 1 else ""
    choices = f"the unstated choices (initialisation, preprocessing; {n_variants} variant{plural})"
    judged = [
        c for c in claims if any(not str(v).startswith(VERDICT_NOT_RUN) for v in c["verdicts"].values())
    ]
    flips = [s for s in signs if s["changes"]]
    if not judged:
        statement = (
            f"Claims 1 and 2 could not be judged under {choices}: the study lacks networks they compare "
            f"(it has {', '.join(MODEL_NAMES[a] for a in activations)})."
        )
    elif depending:
        numbers = " and ".join(str(n) for n in depending)
        statement = f"The verdict of claim{'s' if len(depending) > 1 else ''} {numbers} depends on {choices}."
    else:
        statement = f"No verdict of claims 1 and 2 depends on {choices}."
    if flips:
        statement += (
            " The sign of the mean validation difference over the ReLU CNN changes for "
            + ", ".join(f"{MODEL_NAMES[s['activation']]} ({s['size']})" for s in flips)
            + "."
        )
    return statement


# ------------------------------------------------------------------------------------ main


def csv_rows(variants: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The long table of every variant's Table 2 rows (columns :data:`CSV_COLUMNS`)."""
    rows = [
        {
            "variant": v["name"],
            "initialisation": v["initialisation"],
            "preprocessing": v["preprocessing"],
            **row,
        }
        for v in variants
        for row in v["table2"]
    ]
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS))


def sensitivity(params: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    """Evaluate every variant, write ``sensitivity.json`` and ``sensitivity.csv``; return the JSON."""
    study = check_params(params)
    if study is None:
        result: dict[str, Any] = dict(NOT_RUN_RESULT)
        variants: list[dict[str, Any]] = []
    else:
        published = load_published()
        variants = [evaluate_variant(v, study, published) for v in study["variants"]]
        reasons = preview_reasons(study["settings"], len(study["seeds"]))
        result = {
            "status": "ok",
            "description": DESCRIPTION,
            "sizes": study["sizes"],
            "activations": study["activations"],
            "seeds": study["seeds"],
            "reference": study["reference"],
            "preview": bool(reasons),
            "preview_reasons": reasons,
            "variants": variants,
            "outcome": outcome(variants, study["sizes"], study["activations"]),
        }
    result = json_ready(result)
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "sensitivity.json", json.dumps(result, indent=1, ensure_ascii=False))
    write_text_atomic(out_dir / "sensitivity.csv", csv_rows(variants).to_csv(index=False))
    if study is not None:
        log.info("sensitivity: %s", result["outcome"]["statement"])
    return result


# --------------------------------------------------------------------------------------- CLI


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params

    try:
        sensitivity(parse_params(args.params), args.out_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "sensitivity",
        help=(
            "sensitivity.json/.csv: Table 2 and the claim 1/2 verdicts under each variant of the unstated "
            "choices"
        ),
        description="Compare the runs of several variants of the choices the paper leaves open "
        "(initialisation, preprocessing): Table 2 differences with 95 %% intervals and the verdicts of "
        "claims 1 and 2 per variant, and whether a verdict depends on the choice. Without variants: a JSON "
        "with status 'not run'.",
    )
    parser.add_argument(
        "--params",
        required=True,
        help="JSON: sizes, activations, seeds, reference, settings (the run's config), variants "
        "(each: name, initialisation, preprocessing, roots: activation -> results folder)",
    )
    parser.add_argument(
        "--out-dir", required=True, type=Path, help="where sensitivity.json and sensitivity.csv go"
    )
    parser.set_defaults(func=_cmd_sensitivity)
