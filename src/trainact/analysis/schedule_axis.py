"""The schedule axis judged: where along the length of the first learning-rate phase the paper's
claims hold (:mod:`trainact.training.schedules` plans the runs; this module reads them).

Per point ``L`` of the axis (L epochs at the first learning rate, then the same tail) and for the
paper's own schedule (the main grid, the *reference*):

* the paired per-seed differences ``100 * (acc of the trainable CNN - acc of the ReLU CNN)``,
  same size and seed, at the **final epoch** (the endpoint the verdicts rest on: fixed in
  advance, it selects nothing on the test set) and **best over epochs** (the paper's measure,
  context only): mean and 95 % Student-t interval (:func:`trainact.analysis.statistics.interval`; no
  interval from one seed);
* the eval-mode accuracy on the fixed training subset at epoch L (the drop) and at the final
  epoch, per model: how far each network had fitted when the learning rate fell;
* the verdicts of the claims on the training runs (1, 2, 5-7 where the axis has their sizes;
  :func:`trainact.analysis.claims.summarize_claims`, on the final-epoch differences);
* each schedule in epochs and optimiser steps per learning rate.

Outcome: per claim one line over the axis, e.g. "consistent for L <= 5, inconsistent for
L >= 15"; when the claim is consistent at one L and inconsistent at another the line reads
"depends on the schedule".

``trainact schedule-axis --params JSON --out-dir DIR --figure-dir DIR`` writes
``DIR/schedule_axis.json``, ``DIR/schedule_axis.csv`` (long format) and the figure
``schedule_axis.png|pdf`` (the differences against L, per size and activation, with intervals).
Without points (the axis off) the JSON says ``"status": "not run"``, the CSV has its header
only and the figure says so.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from trainact.analysis.claims import summarize_claims
from trainact.analysis.labels import MODEL_NAMES, model_name_of
from trainact.analysis.results import (
    collect_runs,
    json_ready,
    ok_rows,
    read_history,
    read_summaries,
    train_history_path,
)
from trainact.analysis.statistics import interval
from trainact.analysis.tables import load_published, paired_differences_pp
from trainact.analysis.verdicts import CONSISTENT, DEPENDS, INCONSISTENT, NOT_RUN, NOT_SUPPORTED, SUPPORTED
from trainact.files import write_csv_atomic, write_text_atomic
from trainact.layout import SCHEDULE_AXIS_FIGURE, SCHEDULE_AXIS_FILES
from trainact.names import TRAINABLE
from trainact.training.schedules import phases, schedule_text

log = logging.getLogger(__name__)

PARAM_KEYS = ("sizes", "activations", "seeds", "points", "reference", "settings")
#: The endpoints compared: the verdicts' (final epoch) and the paper's (best over epochs).
ENDPOINTS = {"final": "final_val_acc", "best": "best_val_acc"}
CSV_COLUMNS = (
    "first_phase",
    "reference",
    "size",
    "activation",
    "endpoint",
    "n_pairs",
    "mean_pp",
    "ci_low_pp",
    "ci_high_pp",
)
#: The claims judged along the axis: those on the grid's training runs (1, 2; the size trend 5,
#: the generalisation gap 6 and non-inferiority 7 where the axis has their sizes).
AXIS_CLAIMS = (1, 2, 5, 6, 7)
#: How an outcome reads in the line over the axis (every point is a shortened schedule: a preview).
OUTCOME_WORDS = {
    SUPPORTED: "consistent",
    CONSISTENT: "consistent",
    NOT_SUPPORTED: "inconsistent",
    INCONSISTENT: "inconsistent",
}
NOT_RUN_RESULT = {
    "status": "not run",
    "reason": "the schedule axis is off (schedule_axis.enabled)",
    "points": [],
}


# ------------------------------------------------------------------------------ one point


def _first_phase(train: Mapping[str, Any]) -> int:
    """Epochs at the first learning rate of a schedule."""
    return phases(train)[0][1]


def _mean_interval(values: Sequence[float]) -> dict[str, Any]:
    """Mean and 95 % interval of per-seed values; no interval from one seed."""
    values = [float(v) for v in values]
    if not values:
        return {"n": 0, "values": [], "mean": None, "low": None, "high": None}
    mean, low, high = interval(values)
    return {"n": len(values), "values": values, "mean": mean, "low": low, "high": high}


def _train_eval_at(
    results: str, size: str, activation: str, seeds: Sequence[int], epoch: int
) -> dict[str, Any]:
    """Eval-mode training-subset accuracy at ``epoch`` and at the final epoch, mean over seeds."""
    at_epoch, final = [], []
    for seed in seeds:
        history = read_history(train_history_path(Path(results), size, activation, seed))
        if "train_eval_acc" not in history:
            continue
        ok = ok_rows(history)
        values = pd.to_numeric(ok["train_eval_acc"], errors="coerce")
        row = values[ok["epoch"] == epoch].dropna()
        if len(row):
            at_epoch.append(float(row.iloc[0]))
        if values.notna().any():
            final.append(float(values.dropna().iloc[-1]))
    mean = lambda v: sum(v) / len(v) if v else None  # noqa: E731
    return {
        "size": size,
        "activation": activation,
        "at_drop": mean(at_epoch),
        "final": mean(final),
        "n": len(at_epoch),
    }


def _steps(
    results: str, size: str, activation: str, seed: int
) -> tuple[int | None, list[dict[str, Any]] | None]:
    """Training images and steps per learning rate, from one run's summary.json."""
    try:
        summaries = read_summaries(Path(results), size, activation, [seed])
    except (OSError, ValueError):
        summaries = []
    summary = summaries[0] if summaries else {}
    return summary.get("train_images"), summary.get("steps_by_learning_rate")


def judge_point(
    root: str,
    train: Mapping[str, Any],
    params: Mapping[str, Any],
    published: Mapping[str, Any],
    *,
    reference: bool = False,
) -> dict[str, Any]:
    """One point of the axis (or the reference): differences, training fit at the drop, verdicts."""
    sizes, activations, seeds = params["sizes"], params["activations"], params["seeds"]
    runs = collect_runs(Path(root), sizes, activations, seeds)
    differences = [
        {
            "size": size,
            "activation": activation,
            "endpoint": endpoint,
            **_mean_interval(
                paired_differences_pp(runs, size, "val", activation, endpoint=endpoint).tolist()
            ),
        }
        for size in sizes
        for activation in [a for a in TRAINABLE if a in activations and "relu" in activations]
        for endpoint in ENDPOINTS
    ]
    settings = {**dict(params.get("settings") or {}), "train": dict(train)}
    claims = [
        c
        for c in summarize_claims(runs, published, settings=settings, sizes=sizes)
        if c["number"] in AXIS_CLAIMS
    ]
    first = _first_phase(train)
    train_images, steps = _steps(root, sizes[0], activations[0], seeds[0])
    return {
        "first_phase": first,
        "reference": reference,
        "root": root,
        "schedule": schedule_text(train, train_images),
        "train": dict(train),
        "train_images": train_images,
        "steps_by_learning_rate": steps,
        "differences": differences,
        "train_eval": [_train_eval_at(root, s, a, seeds, first) for s in sizes for a in activations],
        "final_val_acc": [
            {"size": s, "activation": a, "mean": float(g["final_val_acc"].mean()), "n": int(len(g))}
            for (s, a), g in runs.groupby(["size", "activation"], sort=False)
        ],
        "claims": [
            {
                "number": c["number"],
                "short": c["short"],
                "outcome": c["outcome"],
                "verdict": c["verdict"],
                "scope": c["scope"],
            }
            for c in claims
        ],
    }


# -------------------------------------------------------------------------- over the axis


def axis_line(points: Sequence[Mapping[str, Any]], number: int) -> str:
    """Where claim ``number`` holds along the axis (points in increasing L), as one line.

    Runs of equal outcome are joined: ``"consistent for L <= 5, inconclusive at L = 10,
    inconsistent for L >= 15"``; a claim consistent at one L and inconsistent at another
    begins with ``"depends on the schedule: "``.
    """
    outcomes, scopes = [], set()
    for point in points:
        found = [c for c in point["claims"] if c["number"] == number]
        outcomes.append((point["first_phase"], found[0]["outcome"] if found else NOT_RUN))
        scopes.update(c["scope"] for c in found if c.get("scope"))
    if not outcomes:
        return NOT_RUN
    groups: list[tuple[str, list[int]]] = []
    for L, outcome in outcomes:
        if groups and groups[-1][0] == outcome:
            groups[-1][1].append(L)
        else:
            groups.append((outcome, [L]))
    first_L, last_L = outcomes[0][0], outcomes[-1][0]
    parts = []
    for outcome, Ls in groups:
        word = OUTCOME_WORDS.get(outcome, "inconclusive" if outcome != NOT_RUN else NOT_RUN)
        if len(groups) == 1:
            where = "at every L (" + ", ".join(str(L) for L in Ls) + ")"
        elif Ls[0] == first_L and len(Ls) > 1:
            where = f"for L <= {Ls[-1]}"
        elif Ls[-1] == last_L and len(Ls) > 1:
            where = f"for L >= {Ls[0]}"
        else:
            where = "at L = " + ", ".join(str(L) for L in Ls)
        parts.append(f"{word} {where}")
    words = {OUTCOME_WORDS.get(o) for _, o in outcomes}
    text = ", ".join(parts) + (f" ({', '.join(sorted(scopes))})" if scopes else "")
    return f"{DEPENDS}: {text}" if {"consistent", "inconsistent"} <= words else text


def axis_context(points: Sequence[Mapping[str, Any]]) -> str:
    """What the line over the axis rests on: the optimiser steps at the first learning rate per L,
    and how far the ReLU CNN had fitted its training images when the rate fell (eval mode, mean
    over seeds and the axis' sizes), e.g. ``"steps at 0.001: 1,955 (L = 5), 3,910 (L = 10); ReLU
    CNN's eval-mode training accuracy at the drop: 0.620 (L = 5), 0.700 (L = 10)"``."""
    steps, fit = [], []
    for point in points:
        first = (point.get("steps_by_learning_rate") or [None])[0]
        L = point["first_phase"]
        if first and first["epochs"]:
            steps.append(f"{first['steps'] // first['epochs'] * L:,} (L = {L})")
        relu = [
            r["at_drop"]
            for r in point["train_eval"]
            if r["activation"] == "relu" and r["at_drop"] is not None
        ]
        if relu:
            fit.append(f"{sum(relu) / len(relu):.3f} (L = {L})")
    rate = phases(points[0]["train"])[0][0] if points else None
    parts = ([f"steps at {rate:g}: " + ", ".join(steps)] if steps else []) + (
        ["ReLU CNN's eval-mode training accuracy at the drop: " + ", ".join(fit)] if fit else []
    )
    return "; ".join(parts)


def check_params(params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The axis' parameters, checked; ``None`` when it has no points (off)."""
    unknown = sorted(set(params) - set(PARAM_KEYS))
    if unknown:
        raise ValueError(f"unknown schedule-axis parameter(s) {unknown}; known: {list(PARAM_KEYS)}")
    if not params.get("points"):
        return None
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise ValueError(f"schedule-axis parameters lack {missing}")
    firsts = [int(p["first_phase"]) for p in params["points"]]
    if firsts != sorted(set(firsts)):
        raise ValueError(f"schedule-axis points: first_phase values {firsts} must be strictly increasing")
    return dict(params)


def schedule_axis(params: Mapping[str, Any]) -> dict[str, Any]:
    """The axis judged (module doc): points in increasing L, the reference, a line per claim."""
    checked = check_params(params)
    if checked is None:
        return dict(NOT_RUN_RESULT)
    published = load_published()
    points = [judge_point(p["root"], p["train"], checked, published) for p in checked["points"]]
    for point, planned in zip(points, checked["points"]):
        if point["first_phase"] != int(planned["first_phase"]):
            raise ValueError(
                f"point L = {planned['first_phase']}: its schedule starts with {point['first_phase']} epochs"
            )
    reference = judge_point(
        checked["reference"]["root"], checked["reference"]["train"], checked, published, reference=True
    )
    lines = {number: axis_line(points, number) for number in AXIS_CLAIMS}
    return json_ready(
        {
            "status": "ok",
            "sizes": list(checked["sizes"]),
            "activations": list(checked["activations"]),
            "seeds": [int(s) for s in checked["seeds"]],
            "endpoint": "final-epoch test accuracy (best over epochs shown as the paper's measure)",
            "points": points,
            "reference": reference,
            "claim_lines": {str(k): v for k, v in lines.items()},
            "context": axis_context(points),
        }
    )


def csv_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The long table: one row per point, size, trainable activation and endpoint."""
    rows = []
    for point in list(result.get("points", [])) + ([result["reference"]] if result.get("reference") else []):
        for d in point["differences"]:
            rows.append(
                {
                    "first_phase": point["first_phase"],
                    "reference": point["reference"],
                    "size": d["size"],
                    "activation": d["activation"],
                    "endpoint": d["endpoint"],
                    "n_pairs": d["n"],
                    "mean_pp": d["mean"],
                    "ci_low_pp": d["low"],
                    "ci_high_pp": d["high"],
                }
            )
    return rows


# ------------------------------------------------------------------------------ the figure


#: One colour per model in the schedule axis' figure.
AXIS_COLORS = {"relu": "0.3", "fourier": "tab:blue", "lc": "tab:orange"}


def plot_schedule_axis(result: Mapping[str, Any]):
    """Paired difference over ReLU (pp) against L, a panel per size: final epoch (solid, with
    its interval as error bars; none from one seed) and best over epochs (dashed); the paper's
    schedule as an open marker; below, the eval-mode training accuracy at epoch L per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if result.get("status") != "ok":
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "schedule axis not run", ha="center", va="center")
        return fig
    sizes = result["sizes"]
    fig, axes = plt.subplots(2, len(sizes), figsize=(5.2 * len(sizes), 6.4), squeeze=False, sharex="col")
    for column, size in enumerate(sizes):
        _plot_differences(axes[0][column], result, size)
        _plot_fit_at_drop(axes[1][column], result, size)
    n_seeds = len(result["seeds"])
    fig.suptitle(
        f"The schedule axis ({n_seeds} seed{'s' if n_seeds != 1 else ''}"
        + ("; no interval from one seed" if n_seeds == 1 else "; bars: 95 % t-interval")
        + ")",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _plot_differences(ax, result: Mapping[str, Any], size: str) -> None:
    """The upper panel of ``size``: each trainable model's difference over ReLU against L."""
    points, reference = result["points"], result["reference"]
    ax.axhline(0.0, color="0.6", lw=0.8)
    for activation in [a for a in TRAINABLE if a in result["activations"]]:
        for endpoint, style in (("final", "-"), ("best", "--")):
            xs, ys, lows, highs = [], [], [], []
            for point in points:
                for d in point["differences"]:
                    if (d["size"], d["activation"], d["endpoint"]) == (size, activation, endpoint) and d["n"]:
                        xs.append(point["first_phase"])
                        ys.append(d["mean"])
                        lows.append(d["low"])
                        highs.append(d["high"])
            if not xs:
                continue
            endpoint_name = "final epoch" if endpoint == "final" else "best (paper)"
            label = f"{MODEL_NAMES[activation]} − ReLU CNN, {endpoint_name}"
            ax.plot(xs, ys, style, color=AXIS_COLORS[activation], marker="o", ms=4, label=label)
            if endpoint == "final" and all(lo is not None for lo in lows):
                yerr = [[y - lo for y, lo in zip(ys, lows)], [hi - y for y, hi in zip(ys, highs)]]
                ax.errorbar(xs, ys, yerr=yerr, fmt="none", color=AXIS_COLORS[activation], capsize=3, lw=1)
        ref = [
            d
            for d in reference["differences"]
            if (d["size"], d["activation"], d["endpoint"]) == (size, activation, "final")
        ]
        if ref and ref[0]["n"]:
            ax.plot(
                [reference["first_phase"]],
                [ref[0]["mean"]],
                marker="D",
                mfc="none",
                color=AXIS_COLORS[activation],
                ls="none",
                ms=8,
                label=f"{MODEL_NAMES[activation]}, main grid's schedule (final)",
            )
    ax.set_title(f"{size} networks: difference over the ReLU CNN")
    ax.set_ylabel("test accuracy difference (pp)")
    ax.legend(fontsize=7, loc="best")


def _plot_fit_at_drop(fit_ax, result: Mapping[str, Any], size: str) -> None:
    """The lower panel of ``size``: each model's eval-mode training accuracy at epoch L."""
    points = result["points"]
    for activation in result["activations"]:
        xs, ys = [], []
        for point in points:
            for row in point["train_eval"]:
                if (row["size"], row["activation"]) == (size, activation) and row["at_drop"] is not None:
                    xs.append(point["first_phase"])
                    ys.append(row["at_drop"])
        if xs:
            fit_ax.plot(xs, ys, "-o", color=AXIS_COLORS[activation], ms=4, label=model_name_of(activation))
    fit_ax.set_xlabel("L: epochs at the first learning rate before the tail")
    fit_ax.set_ylabel("eval-mode training accuracy at epoch L")
    fit_ax.legend(fontsize=7, loc="best")
    fit_ax.set_xticks([p["first_phase"] for p in points])


# ------------------------------------------------------------------------------------ CLI


def _cmd_schedule_axis(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError, parse_params
    from trainact.report.plot_style import save_figure

    params = parse_params(args.params, PARAM_KEYS)
    try:
        result = schedule_axis(params)
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(str(exc)) from None
    out_dir = Path(args.out_dir)
    write_text_atomic(out_dir / SCHEDULE_AXIS_FILES[0], json.dumps(result, indent=1))
    write_csv_atomic(out_dir / SCHEDULE_AXIS_FILES[1], csv_rows(result), CSV_COLUMNS)
    save_figure(plot_schedule_axis(result), Path(args.figure_dir), SCHEDULE_AXIS_FIGURE)
    for number, line in result.get("claim_lines", {}).items():
        log.info("claim %s over the schedule axis: %s", number, line)
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "schedule-axis",
        help="judge the claims along the length of the first learning-rate phase",
        description=(
            "Paired differences, training fit at the drop and verdicts per point of the schedule axis."
        ),
    )
    parser.add_argument(
        "--params", required=True, help="JSON: sizes, activations, seeds, points, reference, settings"
    )
    parser.add_argument("--out-dir", required=True, type=Path, help="folder of schedule_axis.json and .csv")
    parser.add_argument("--figure-dir", required=True, type=Path, help="folder of schedule_axis.png and .pdf")
    parser.set_defaults(func=_cmd_schedule_axis)
