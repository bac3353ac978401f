"""``trainact aggregate``: the paper's Table 1 and Table 2, the Section 5 summaries and the
verdicts on the paper's claims, from the training histories of one results folder.

It reads the runs (:mod:`trainact.analysis.results`: per run the best value of each metric over
the ok epochs, the paper's measure, and the final epoch's accuracies), makes the tables
(:mod:`trainact.analysis.tables`), summarises the autoencoder and PSO experiments
(:mod:`trainact.analysis.section5`) and judges the paper's claims on the final-epoch paired
differences (the endpoint fixed in advance; :func:`trainact.analysis.claims.summarize_claims`), so
that their verdicts, intervals and preview reasons are data in ``summary.json`` and the report
only renders them.

Outputs (``<out>/tables``): ``table1.csv|json``, ``table2.csv|json``, ``runs.csv`` (per-run
bests) and ``summary.json`` (everything the report needs, the claims' verdicts included).

``trainact aggregate --params JSON --results DIR --out-dir DIR``: the JSON is the grid the
results hold (``sizes``, ``activations``, ``seeds``, ``autoencoder_seeds``, ``pso_seeds``) and
``settings`` (the run's ``train`` and ``dataset`` config, which decide whether a verdict is a
preview).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trainact.analysis.claims import CLAIMS_RULE, summarize_claims
from trainact.analysis.preview import PREVIEW_RULE
from trainact.analysis.results import LATE_EPOCHS, collect_runs, json_ready, records
from trainact.analysis.section5 import summarize_autoencoder, summarize_pso
from trainact.analysis.tables import load_published, network_facts, table1, table2
from trainact.files import write_text_atomic
from trainact.layout import AGGREGATE_SUMMARY_FILE
from trainact.names import ACTIVATIONS, SIZES, check_names

log = logging.getLogger(__name__)

#: How a run that diverged enters the tables and verdicts (:func:`trainact.analysis.results.best_of_history`
#: reads its ok epochs; :func:`trainact.analysis.statistics.stats` skips a missing value).
DIVERGED_RULE = (
    "a run whose training loss became non-finite stopped there with the weights of its last ok "
    "epoch; it counts in Table 1, Table 2 and the verdicts with its ok epochs (best over them; "
    "final = its last ok epoch), the epoch marked diverged ignored; a run that diverged in its "
    "first epoch has no value and is left out of the means (Table 1's seeds column counts it as "
    "diverged)"
)
#: What each number of ``summary.json`` is (its ``definitions``).
DEFINITIONS = {
    "best": "per run, max accuracy and min loss over the ok epochs, each independently "
    "(the paper's measure: the best test accuracy over epochs)",
    "final": "per run, the last ok epoch's accuracy: the endpoint of every verdict",
    "late_spread": f"per run, sample std of val_acc over the last {LATE_EPOCHS} ok epochs",
    "table1": "mean and sample std (ddof=1) over seeds of the per-run bests; diff = mean - published; "
    "final_*: of the final epoch",
    "table2": "100 * (best acc - best acc of the ReLU CNN of the same size and seed), "
    "mean and sample std over paired seeds, percentage points; final_*: the same at the final epoch",
    "accuracy_unit": "fraction in [0, 1]",
    "claims": CLAIMS_RULE,
    "diverged": DIVERGED_RULE,
    "claims_preview": PREVIEW_RULE,
}


def diverged_runs(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The runs that stopped on a non-finite loss, or that have epochs other than ``ok``."""
    return [
        {
            "run": r["run"],
            "diverged_epoch": r["diverged_epoch"],
            "epochs_ok": r["epochs_ok"],
            "epochs_ignored": r["epochs_ignored"],
        }
        for r in runs
        if r["diverged_epoch"] is not None or r["epochs_ignored"]
    ]


def aggregate(
    results: Path,
    out_dir: Path,
    sizes: Sequence[str],
    activations: Sequence[str],
    seeds: Sequence[int],
    autoencoder_seeds: Sequence[int] = (),
    pso_seeds: Sequence[int] = (),
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Read every expected history, write the tables and ``summary.json``; return the summary.

    ``settings``: the run's config (``train``, ``dataset``), for the claims' preview rule
    (:func:`trainact.analysis.preview.preview_reasons`; without it only the number of seeds is judged).
    """
    if settings is not None and not isinstance(settings, Mapping):
        raise ValueError(
            f"aggregate parameter 'settings' must be a mapping (the run's config), got {settings!r}"
        )
    sizes = check_names("sizes", sizes, SIZES)
    activations = check_names("activations", activations, ACTIVATIONS)
    if not seeds:
        raise ValueError("no seeds given")
    published = load_published()
    runs = collect_runs(results, sizes, activations, seeds)
    t1 = table1(runs, published)
    t2 = table2(runs, published)
    autoencoder = summarize_autoencoder(results, autoencoder_seeds)
    pso = summarize_pso(results, pso_seeds)
    claims = summarize_claims(
        runs, published, autoencoder=autoencoder, pso=pso, settings=settings, sizes=sizes
    )
    run_records = records(runs)
    summary = json_ready(
        {
            "sizes": sizes,
            "activations": activations,
            "seeds": [int(s) for s in seeds],
            "definitions": DEFINITIONS,
            "runs": run_records,
            "table1": records(t1),
            "networks": network_facts(results, sizes, activations, seeds),
            "table2": records(t2),
            "diverged": diverged_runs(run_records + autoencoder.get("runs", [])),
            "autoencoder": autoencoder,
            "pso": pso,
            "claims": claims,
            "source": published["source"],
        }
    )
    write_outputs(Path(out_dir), runs, t1, t2, summary)
    for entry in summary["diverged"]:
        log.warning(
            "run %s: %d epoch(s) ignored (diverged at epoch %s)",
            entry["run"],
            entry["epochs_ignored"],
            entry["diverged_epoch"],
        )
    return summary


def write_outputs(
    out_dir: Path, runs: pd.DataFrame, t1: pd.DataFrame, t2: pd.DataFrame, summary: Mapping[str, Any]
) -> None:
    """Write ``runs.csv``, the tables as CSV and JSON (with their definition) and ``summary.json``."""
    write_text_atomic(out_dir / "runs.csv", runs.to_csv(index=False))
    write_text_atomic(out_dir / "table1.csv", t1.to_csv(index=False))
    write_text_atomic(out_dir / "table2.csv", t2.to_csv(index=False))
    for name in ("table1", "table2"):
        document = {"description": summary["definitions"][name], "rows": summary[name]}
        write_text_atomic(out_dir / f"{name}.json", json.dumps(document, indent=1))
    write_text_atomic(out_dir / AGGREGATE_SUMMARY_FILE, json.dumps(summary, indent=1))


# --------------------------------------------------------------------------------------- CLI


#: The keys of ``--params``: the grid the results hold and the settings the claims judge.
PARAM_KEYS = ("sizes", "activations", "seeds", "autoencoder_seeds", "pso_seeds", "settings")


def aggregate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`aggregate` from its ``--params`` JSON; unknown keys and a
    missing ``seeds`` are errors, ``sizes`` and ``activations`` default to all of them."""
    unknown = sorted(set(params) - set(PARAM_KEYS))
    if unknown:
        raise ValueError(f"unknown aggregate parameter(s) {unknown}; known: {list(PARAM_KEYS)}")
    if "seeds" not in params:
        raise ValueError("aggregate parameter 'seeds' is missing")
    for key in ("sizes", "activations", "seeds", "autoencoder_seeds", "pso_seeds"):
        if key in params and not isinstance(params[key], list):
            raise ValueError(f"aggregate parameter {key!r} must be a list, got {params[key]!r}")
    for key in ("seeds", "autoencoder_seeds", "pso_seeds"):
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in params.get(key, [])):
            raise ValueError(f"aggregate parameter {key!r} must be a list of integers, got {params[key]!r}")
    return {
        "sizes": params.get("sizes", list(SIZES)),
        "activations": params.get("activations", list(ACTIVATIONS)),
        "seeds": params["seeds"],
        "autoencoder_seeds": params.get("autoencoder_seeds", []),
        "pso_seeds": params.get("pso_seeds", []),
        "settings": params.get("settings", {}),
    }


def _cmd_aggregate(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params

    try:
        aggregate(args.results, args.out_dir, **aggregate_params(parse_params(args.params)))
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "aggregate",
        help="Table 1, Table 2, the claims' verdicts and summary.json from the training histories",
        description="Best-over-epochs per run, mean/std over seeds per model, improvements over "
        "ReLU in percentage points, beside the paper's published values; the paper's claims judged "
        "on them.",
    )
    parser.add_argument(
        "--params",
        required=True,
        help="JSON: sizes, activations (default: all), seeds, autoencoder_seeds, pso_seeds "
        "(none: 'not run'), settings (the run's train and dataset config, for the preview rule)",
    )
    parser.add_argument("--results", required=True, type=Path, help="results folder (<out>)")
    parser.add_argument("--out-dir", required=True, type=Path, help="where the tables go (<out>/tables)")
    parser.set_defaults(func=_cmd_aggregate)
