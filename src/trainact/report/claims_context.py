"""The report's verdicts, formatted: the claims of ``summary.json`` (``trainact aggregate``), the
sensitivity study (``trainact sensitivity``) and the schedule axis (``trainact schedule-axis``),
each turned into the rows and sentences the templates show. Every number is already computed;
this module only formats (:mod:`trainact.report.formatting`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trainact.analysis.labels import MODEL_NAMES, SPLIT_WORDS, model_name_of
from trainact.analysis.verdicts import DEPENDS, NOT_RUN
from trainact.layout import SCHEDULE_AXIS_FIGURE
from trainact.names import TRAINABLE
from trainact.report.captions import CAPTIONS
from trainact.report.formatting import (
    ACC_DECIMALS,
    MISSING,
    PP_DECIMALS,
    evidence_text,
    fmt,
    fmt_mean_std,
    interval_bounds_text,
    key_numbers_text,
    paper_text,
)

SENSITIVITY_NOT_RUN = "Sensitivity to unstated choices: not run."
SCHEDULE_AXIS_NOT_RUN = "Schedule axis: not run."


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
                "key_numbers": [
                    key_numbers_text(c, claim["preview"]) for c in claim["comparisons"] if c["judged"]
                ]
                or ["not run"],
                "seeds": str(claim["n_seeds"]) if claim["n_seeds"] is not None else "–",
                "preview": "yes" if claim["preview"] else "no",
                "preview_reasons": "; ".join(claim["preview_reasons"]) if claim["preview"] else "",
                "verdict": claim["verdict"],
            }
        )
    return rows


def preview_notes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why the verdicts marked preview are previews, said once under the verdicts table: one line
    for all of them where their reasons are the same (the run's seeds and schedule, as a rule),
    else one line per claim."""
    previews = [row for row in rows if row["preview"] == "yes"]
    reasons = list(dict.fromkeys(row["preview_reasons"] for row in previews))
    if len(reasons) == 1:
        numbers = ", ".join(str(row["number"]) for row in previews)
        return [f"Preview (claim{'s' if len(previews) > 1 else ''} {numbers}): {reasons[0]}."]
    return [f"Preview (claim {row['number']}): {row['preview_reasons']}." for row in previews]


def sensitivity_context(sensitivity: Mapping[str, Any] | None) -> dict[str, Any]:
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
        "statements": [c["statement"] for c in outcome["claims"]]
        + [s["statement"] for s in outcome["signs"]],
        "scope": (
            f"sizes {', '.join(sensitivity['sizes'])}; "
            f"seeds {', '.join(str(s) for s in sensitivity['seeds'])}"
        ),
        "preview": "; ".join(sensitivity["preview_reasons"]) if sensitivity["preview"] else None,
    }


def schedule_axis_context(axis: Mapping[str, Any] | None, figures_rel: str) -> dict[str, Any]:
    """The schedule axis with every number formatted; ``run`` false when absent or not run."""
    if not axis or axis.get("status") != "ok":
        return {"run": False, "summary": SCHEDULE_AXIS_NOT_RUN, "lines": {}}
    trainable = [a for a in TRAINABLE if a in axis["activations"]]
    lines = {
        int(k): v for k, v in axis["claim_lines"].items() if v != NOT_RUN and "not run" not in v.split(",")[0]
    }
    return {
        "run": True,
        "summary": (
            "Schedule axis (Section 9): the same claims with L = "
            f"{', '.join(str(p['first_phase']) for p in axis['points'])} "
            f"epochs at the first learning rate, each then the same tail; sizes {', '.join(axis['sizes'])}, "
            f"seeds {', '.join(str(s) for s in axis['seeds'])}."
        ),
        "lines": lines,
        "context": axis.get("context", ""),
        "models": [MODEL_NAMES[a] for a in trainable],
        "claim_numbers": sorted(lines),
        "rows": _schedule_axis_rows(axis, trainable),
        "figure": {
            "png": f"{figures_rel}/{SCHEDULE_AXIS_FIGURE}.png",
            "pdf": f"{SCHEDULE_AXIS_FIGURE}.pdf",
            "title": CAPTIONS[SCHEDULE_AXIS_FIGURE].title,
            "caption": CAPTIONS[SCHEDULE_AXIS_FIGURE].caption,
        },  # fmt: skip
    }


def _schedule_axis_rows(axis: Mapping[str, Any], trainable: Sequence[str]) -> list[dict[str, Any]]:
    """One row per point of the axis (then the main grid) and size: the differences at both
    endpoints, the training fit at the drop and the verdicts."""
    rows = []
    for point in axis["points"] + [axis["reference"]]:
        for size in axis["sizes"]:
            differences = [d for d in point["differences"] if d["size"] == size]
            rows.append(
                {
                    "L": f"{point['first_phase']}" + (" (main grid)" if point["reference"] else ""),
                    "size": size.capitalize(),
                    "schedule": point["schedule"],
                    "final": [_difference_cell(differences, a, "final") for a in trainable],
                    "best": [_difference_cell(differences, a, "best") for a in trainable],
                    "fit_at_drop": _fit_at_drop([r for r in point["train_eval"] if r["size"] == size]),
                    "claims": {c["number"]: c["verdict"] for c in point["claims"]},
                }
            )
    return rows


def _difference_cell(differences: Sequence[Mapping[str, Any]], activation: str, endpoint: str) -> str:
    """Mean and interval of one model's difference over ReLU at ``endpoint`` (of one point and size)."""
    found = [d for d in differences if (d["activation"], d["endpoint"]) == (activation, endpoint)]
    if not found or not found[0]["n"]:
        return MISSING
    d = found[0]
    return (
        f"{fmt(d['mean'], PP_DECIMALS, True)} {interval_bounds_text(d['low'], d['high'], PP_DECIMALS, True)}"
    )


def _fit_at_drop(train_eval: Sequence[Mapping[str, Any]]) -> str:
    """Each model's eval-mode training accuracy when the learning rate fell (one point and size)."""
    return (
        ", ".join(
            f"{model_name_of(r['activation'])} {fmt(r['at_drop'], ACC_DECIMALS)}"
            for r in train_eval
            if r["at_drop"] is not None
        )
        or MISSING
    )


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
