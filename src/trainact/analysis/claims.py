"""The paper's claims checked against the reproduced runs (no torch, no Jinja2).

Endpoint. Every verdict rests on the accuracy of the *final* epoch (the last epoch that finished
normally), fixed in advance and paired by seed. The paper's own measure, the best test accuracy
over the epochs, selects the model on the test set and gains from the noise of the late epochs;
:mod:`trainact.analysis.tables` still reports it (Table 1 and 2) beside the final epoch, never for a
verdict.

Each claim of the paper becomes one or more comparisons, each a per-seed quantity (a paired
accuracy difference in points, a difference of epochs, or the PSO/RMSProp ratio) and a claimed
region (e.g. difference > 0). The statistics over the seeds are
:mod:`trainact.analysis.statistics`, the verdict of each comparison and of the claim
:mod:`trainact.analysis.verdicts`, and whether a verdict is only a preview
:mod:`trainact.analysis.preview`; this module defines the claims' comparisons and regions (their
statements are :data:`~trainact.analysis.claim_texts.CLAIM_TEXTS`) and judges them
(:func:`evaluate_claims`).

Claims on some sizes (1, 2, 6, 7) can be evaluated on the sizes a run has (``sizes=``): the
verdict then names its scope, e.g. "supported (small networks only)".

:func:`evaluate_claims` is pure: it judges numbers computed elsewhere (the paired per-seed
differences of :func:`trainact.analysis.tables.paired_differences_pp`, the Section 5 summaries
of :mod:`trainact.analysis.section5`); :func:`summarize_claims` computes those differences from a
runs table and judges them, for ``trainact aggregate`` (which stores the result in
``summary.json``), ``trainact sensitivity`` (per variant) and ``trainact schedule-axis`` (per
point). This module formats no numbers: :mod:`trainact.report.formatting` turns the raw
comparisons (mean, interval, p-value, per-seed values) into the report's text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from trainact.analysis.claim_texts import CLAIM_TEXTS, ClaimText
from trainact.analysis.labels import MODEL_NAMES
from trainact.analysis.preview import preview_reasons
from trainact.analysis.statistics import Region
from trainact.analysis.tables import paired_differences_pp
from trainact.analysis.thresholds import ABOUT_HALF, CONVERGENCE_SHARE, NON_INFERIORITY_MARGIN_PP
from trainact.analysis.verdicts import (
    FAMILY_ALPHA,
    NEGATIVE,
    NO_INTERVAL,
    NOT_RUN,
    POSITIVE,
    Comparison,
    combine,
    judge,
    verdict_label,
)
from trainact.names import SIZES, TRAINABLE, check_names

CLAIMS_RULE = (
    "Every verdict rests on the final epoch's test accuracy (the last ok epoch), paired by seed; the paper's "
    "best accuracy over epochs (model selection on the test set) is reported beside it, never judged. Per "
    "claim, each comparison is a per-seed quantity: a paired difference of final accuracy (same size and "
    "seed) in percentage points, a difference of epochs, or the PSO/RMSProp accuracy ratio, with a claimed "
    "region. Over the n seeds we take the mean m, the 95 % Student-t interval m ± t(0.975, n−1)·s/√n (s the "
    "sample standard deviation, t from scipy.stats.t.ppf), the one-sided t-test p-value of the wrong "
    "direction (the mean beyond the claimed region) and the minimum detectable difference at 80 % power, "
    "two-sided 5 %: (t(0.975, n−1) + t(0.8, n−1))·s/√n. With one seed there is no interval, p-value or "
    f'detectable difference ("{NO_INTERVAL}"): the comparison is only consistent or inconsistent with the '
    "claim by the sign of its single value, always a preview. A comparison is supported when its whole "
    "interval lies in the claimed region; not supported when its wrong-direction p-value, Holm-adjusted over "
    f"the judged comparisons of its claim, is below {FAMILY_ALPHA:g} (family-wise); otherwise inconclusive "
    "under the seed spread. A claim is supported when all its comparisons are, not supported when any is, "
    f"otherwise inconclusive. Regions: difference > 0; ratio within [{ABOUT_HALF[0]:g}, {ABOUT_HALF[1]:g}] "
    'for "about half" and < 1 for "lower than BP"; non-inferiority difference > '
    f"−{NON_INFERIORITY_MARGIN_PP:g} pp; generalisation gap difference < 0."
)
#: Claim 4: "about half" (a closed region) and "lower than BP" (ratio < 1).
ABOUT_HALF_REGION = Region(ABOUT_HALF[0], ABOUT_HALF[1], open_low=False, open_high=False)
BELOW_ONE = Region(high=1.0)
#: Claim 7: not worse than ReLU by more than the margin.
NON_INFERIOR = Region(low=-NON_INFERIORITY_MARGIN_PP)


def scope_text(sizes: Sequence[str]) -> str | None:
    """``"small networks only"`` for a subset of the sizes; ``None`` for all three."""
    if set(sizes) >= set(SIZES):
        return None
    names = list(sizes)
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{joined} networks only"


def _partial_scope(sizes: Sequence[str], about: Sequence[str]) -> str | None:
    """The scope of a claim about the sizes ``about`` evaluated on ``sizes``: ``None`` when all of
    them are present (or none, the claim is then not run), else the part present."""
    present = [s for s in sizes if s in about]
    return None if len(present) in (0, len(about)) else scope_text(present)


def _claim(
    text: ClaimText,
    paper: Mapping[str, Any],
    settings: Mapping[str, Any],
    comparisons: Sequence[Comparison] = (),
    missing: Sequence[str] = (),
    scope: str | None = None,
    not_run: bool = False,
) -> dict[str, Any]:
    """One claim: its judged comparisons, the verdict (``outcome``) and the label shown (``verdict``).

    Not run when ``not_run``, when a comparison is ``missing`` or none is judged.
    """
    evidence = judge(comparisons)
    judged = [e for e in evidence if e.judged]
    verdict = NOT_RUN if not_run or missing or not judged else combine([e.verdict for e in judged])
    n_seeds = min(len(e.values) for e in judged) if verdict != NOT_RUN else None
    reasons = preview_reasons(settings, n_seeds) if n_seeds is not None else []
    return {
        "number": text.number,
        "claim": text.claim,
        "short": text.short,
        "source": text.source,
        "paper": dict(paper),
        "scope": scope,
        "comparisons": [e.as_dict() for e in evidence],
        "missing": list(missing),
        "n_seeds": n_seeds,
        "preview": bool(reasons),
        "preview_reasons": reasons,
        "outcome": verdict,
        "verdict": verdict_label(verdict, bool(reasons), scope),
    }


#: Claim 2's comparisons: Fourier-CNN over the other two on small networks, LC-CNN on large ones.
CLAIM2_PAIRS = (
    ("small", "fourier", "lc"),
    ("small", "fourier", "relu"),
    ("large", "lc", "fourier"),
    ("large", "lc", "relu"),
)
#: Claim 6 (Section 4.1) is about the middle and large networks.
GENERALISATION_SIZES = ("middle", "large")
#: What claim 6 lacks in histories written before the eval-mode training accuracy was recorded.
NO_TRAIN_EVAL = "eval-mode training accuracy (train_eval_acc, absent from the histories)"


def claim1_pairs(sizes: Sequence[str]) -> list[tuple[str, str, str]]:
    """Claim 1's comparisons ``(size, better, worse)`` on ``sizes``: each trainable CNN over ReLU."""
    return [(size, activation, "relu") for size in sizes for activation in TRAINABLE]


def compared_pairs(sizes: Sequence[str]) -> list[tuple[str, str, str]]:
    """Every ``(size, better, worse)`` whose paired validation differences the claims judge on
    ``sizes``: what :func:`evaluate_claims` looks up in its ``differences``."""
    pairs = claim1_pairs(sizes) + [p for p in CLAIM2_PAIRS if p[0] in sizes]
    return list(dict.fromkeys(pairs))


def _pair_label(size: str, better: str, worse: str) -> str:
    return f"{size}: {MODEL_NAMES[better]} − {MODEL_NAMES[worse]}"


def _per_seed(values: Mapping[int, float] | None) -> list[float]:
    """The values of a ``{seed: value}`` mapping in seed order (none for ``None``)."""
    return [float(values[seed]) for seed in sorted(values)] if values else []


def _pairs_claim(
    text: ClaimText,
    paper: Mapping[str, Any],
    differences: Mapping[tuple[str, str, str], Mapping[int, float]],
    pairs: Sequence[tuple[str, str, str]],
    settings: Mapping[str, Any],
    scope: str | None,
    region: Region = POSITIVE,
) -> dict[str, Any]:
    """A claim whose comparisons are paired differences of final validation accuracy in ``region``."""
    comparisons, missing = [], []
    for pair in pairs:
        values = _per_seed(differences.get(pair))
        if values:
            comparisons.append(Comparison(_pair_label(*pair), values, region))
        else:
            missing.append(_pair_label(*pair))
    return _claim(text, paper, settings, comparisons, missing, scope)


def _size_trend_comparisons(
    differences: Mapping[tuple[str, str, str], Mapping[int, float]], sizes: Sequence[str]
) -> tuple[list[Comparison], list[str]]:
    """Claim 5: per trainable activation and seed, its improvement over ReLU on the small (and the
    middle) network minus that on the large one."""
    comparisons, missing = [], []
    for activation in TRAINABLE:
        large = differences.get(("large", activation, "relu")) or {}
        for size in [s for s in ("small", "middle") if s in sizes]:
            smaller = differences.get((size, activation, "relu")) or {}
            seeds = sorted(set(smaller) & set(large))
            label = f"{MODEL_NAMES[activation]} − {MODEL_NAMES['relu']}: {size} − large"
            if seeds:
                comparisons.append(Comparison(label, [smaller[s] - large[s] for s in seeds]))
            else:
                missing.append(label)
    return comparisons, missing


def _generalisation_comparisons(
    differences: Mapping[tuple[str, str, str], Mapping[int, float]],
    train_eval_differences: Mapping[tuple[str, str, str], Mapping[int, float]],
    sizes: Sequence[str],
) -> tuple[list[Comparison], list[str]]:
    """Claim 6: per middle/large trainable CNN and seed, the gap (eval-mode training accuracy −
    test accuracy) minus the ReLU CNN's, judged < 0; both parts as context."""
    comparisons, missing = [], []
    for size in [s for s in GENERALISATION_SIZES if s in sizes]:
        for activation in TRAINABLE:
            pair = (size, activation, "relu")
            test, train = differences.get(pair) or {}, train_eval_differences.get(pair) or {}
            seeds = sorted(set(test) & set(train))
            label = _pair_label(*pair)
            if not seeds:
                missing.append(f"{label}: gap (train eval − test)")
                continue
            comparisons += [
                Comparison(
                    f"{label}: gap (train eval − test)", [train[s] - test[s] for s in seeds], NEGATIVE
                ),
                Comparison(
                    f"{label}: train eval acc (context)", [train[s] for s in seeds], NEGATIVE, judged=False
                ),
                Comparison(f"{label}: test acc (context)", [test[s] for s in seeds], POSITIVE, judged=False),
            ]
    return comparisons, missing


Differences = Mapping[tuple[str, str, str], Mapping[int, float]]


def _short_name(activation: str) -> str:
    return MODEL_NAMES[activation].removesuffix("-CNN")


def paper_values(published: Mapping[str, Any]) -> dict[int, dict[str, Any]]:
    """Claim number -> the paper's own numbers the report shows beside it (``source`` and
    ``values``), from the published tables (:func:`trainact.analysis.tables.load_published`)."""
    t1 = {(r["size"], r["activation"]): r for r in published["table1"]}
    t2 = {(r["size"], r["split"], r["activation"]): r["improvement_pp"] for r in published["table2"]}

    def pp(label: str, value: float) -> dict[str, Any]:
        return {"label": label, "value": value, "unit": "pp"}

    orders = (("small", ("fourier", "lc", "relu")), ("large", ("lc", "fourier", "relu")))
    return {
        1: {"source": "Table 2 (validation, pp)",
            "values": [pp(f"{size} {_short_name(a)}", t2[(size, "val", a)])
                       for size in SIZES for a in TRAINABLE]},
        2: {"source": "Table 1 (validation accuracy)",
            "values": [{"label": f"{size} {_short_name(a)}", "value": t1[(size, a)]["val_acc"], "unit": "acc"}
                       for size, order in orders for a in order]},
        3: {"source": "Figure 8 only (no numbers)", "values": []},
        4: {"source": "Figure 9 only (no numbers)", "values": []},
        5: {"source": "Table 2 (validation, pp), smaller minus large",
            "values": [pp(f"{_short_name(a)} {size} − large",
                          round(t2[(size, "val", a)] - t2[("large", "val", a)], 2))
                       for a in TRAINABLE for size in ("small", "middle")]},
        6: {"source": "Table 2 (training − validation improvement, pp)",
            "values": [pp(f"{size} {_short_name(a)}", round(t2[(size, "train", a)] - t2[(size, "val", a)], 2))
                       for size in GENERALISATION_SIZES for a in TRAINABLE]},
        7: {"source": "Sections 2.2 and 6 (an argument, no numbers)", "values": []},
    }  # fmt: skip


def _claim2(
    paper: Mapping[str, Any], differences: Differences, settings: Mapping[str, Any], sizes: Sequence[str]
) -> dict[str, Any]:
    """Claim 2 on the sizes present of small and large (not run without either)."""
    pairs = [p for p in CLAIM2_PAIRS if p[0] in sizes]
    if not pairs:
        return _claim(CLAIM_TEXTS[2], paper, settings, missing=[_pair_label(*p) for p in CLAIM2_PAIRS])
    scope = _partial_scope(sizes, ("small", "large"))
    return _pairs_claim(CLAIM_TEXTS[2], paper, differences, pairs, settings, scope)


def _claim3(
    paper: Mapping[str, Any], autoencoder: Mapping[str, Any] | None, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Claim 3 on the autoencoder summary's per-seed rows (not run without an ``ok`` summary)."""
    autoencoder = autoencoder or {"status": NOT_RUN}
    if autoencoder.get("status") != "ok":
        return _claim(CLAIM_TEXTS[3], paper, settings, not_run=True)
    rows = autoencoder["per_seed"]
    target = f"{CONVERGENCE_SHARE:g} of the not pretrained run's final val acc"
    comparisons = [
        Comparison("final val acc, pretrained − not pretrained", [r["diff_final_val_acc_pp"] for r in rows]),
        Comparison(
            "epoch-1 val acc, pretrained − not pretrained", [r["diff_first_val_acc_pp"] for r in rows]
        ),
        Comparison(
            "epochs to the target, not pretrained − pretrained",
            [r["diff_epochs_to_target"] for r in rows],
            unit="epochs",
            note=f"target: {target}; never reached counts as epochs + 1",
        ),
        Comparison("best val acc (the paper's measure; context)", [r["diff_best_val_acc_pp"] for r in rows],
                   judged=False),
    ]  # fmt: skip
    return _claim(CLAIM_TEXTS[3], paper, settings, comparisons)


def _claim4(
    paper: Mapping[str, Any], pso: Mapping[str, Any] | None, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """Claim 4 on the PSO summary's per-seed ratios (not run without an ``ok`` summary)."""
    pso = pso or {"status": NOT_RUN}
    if pso.get("status") != "ok":
        return _claim(CLAIM_TEXTS[4], paper, settings, not_run=True)
    final = [r["final_ratio"] for r in pso["per_seed"]]
    label = "PSO final test acc / RMSProp final val acc"
    comparisons = [
        Comparison(f"{label}: about half", final, ABOUT_HALF_REGION, unit="ratio"),
        Comparison(f"{label}: lower than BP", final, BELOW_ONE, unit="ratio"),
        Comparison("PSO best test acc / RMSProp best val acc (the paper's measure; context)",
                   [r["ratio"] for r in pso["per_seed"]], ABOUT_HALF_REGION, unit="ratio", judged=False),
    ]  # fmt: skip
    return _claim(CLAIM_TEXTS[4], paper, settings, comparisons)


def _claim5(
    paper: Mapping[str, Any], differences: Differences, settings: Mapping[str, Any], sizes: Sequence[str]
) -> dict[str, Any]:
    """Claim 5: needs the small and the large networks."""
    if "small" in sizes and "large" in sizes:
        comparisons, missing = _size_trend_comparisons(differences, sizes)
        return _claim(CLAIM_TEXTS[5], paper, settings, comparisons, missing)
    missing = [f"{MODEL_NAMES[a]} − {MODEL_NAMES['relu']}: small − large" for a in TRAINABLE]
    return _claim(CLAIM_TEXTS[5], paper, settings, missing=missing)


def _claim6(
    paper: Mapping[str, Any],
    differences: Differences,
    train_eval_differences: Differences,
    settings: Mapping[str, Any],
    sizes: Sequence[str],
) -> dict[str, Any]:
    """Claim 6: needs the eval-mode training accuracy and the middle or large networks."""
    if not any(train_eval_differences.values()):
        comparisons, missing = [], [NO_TRAIN_EVAL]
    elif not any(s in sizes for s in GENERALISATION_SIZES):
        comparisons, missing = [], [f"{size} networks" for size in GENERALISATION_SIZES]
    else:
        comparisons, missing = _generalisation_comparisons(differences, train_eval_differences, sizes)
    scope = _partial_scope(sizes, GENERALISATION_SIZES)
    return _claim(CLAIM_TEXTS[6], paper, settings, comparisons, missing, scope)


def evaluate_claims(
    differences: Differences,
    published: Mapping[str, Any],
    *,
    train_eval_differences: Differences | None = None,
    autoencoder: Mapping[str, Any] | None = None,
    pso: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    sizes: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The paper's claims (1-7), each with its evidence over seeds and a verdict (module doc).

    ``differences``: per ``(size, better, worse)`` of :func:`compared_pairs` the per-seed paired
    differences of final validation accuracy in points, as ``{seed: value}`` (seeds both runs
    have; :func:`trainact.analysis.tables.paired_differences_pp`); a comparison absent or empty was not
    run. ``train_eval_differences``: the same for the eval-mode training accuracy (``train_eval_acc``;
    absent or empty: claim 6 not run). ``published``: the paper's tables
    (:func:`trainact.analysis.tables.load_published`). ``autoencoder``, ``pso``: the Section 5 summaries
    of :mod:`trainact.analysis.section5` (``per_seed`` rows with ``diff_*_val_acc_pp``,
    ``diff_epochs_to_target``, ``final_ratio``, ``ratio``); absent or not ``"ok"``: claims 3 and 4
    not run. ``settings``: the run's config, for :func:`~trainact.analysis.preview.preview_reasons`
    (empty: the seed rule only). ``sizes``: evaluate the claims on these sizes only (default all
    three: a missing size makes claims about it "not run").

    Each claim is a dict: ``number, claim, short, source, paper`` (``source`` and ``values`` of
    the paper's own numbers), ``scope`` (``None`` or e.g. "small networks only"),
    ``comparisons`` (:meth:`~trainact.analysis.verdicts.Evidence.as_dict` each), ``missing``
    (labels of comparisons without runs), ``n_seeds``, ``preview``, ``preview_reasons``,
    ``outcome`` (supported / not supported / inconclusive / consistent / inconsistent / not run)
    and ``verdict`` (the outcome as shown: preview label, scope).
    """
    settings = settings if settings is not None else {}
    sizes = list(SIZES) if sizes is None else check_names("sizes", sizes, SIZES)
    scope = scope_text(sizes)
    paper = paper_values(published)
    return [
        _pairs_claim(CLAIM_TEXTS[1], paper[1], differences, claim1_pairs(sizes), settings, scope),
        _claim2(paper[2], differences, settings, sizes),
        _claim3(paper[3], autoencoder, settings),
        _claim4(paper[4], pso, settings),
        _claim5(paper[5], differences, settings, sizes),
        _claim6(paper[6], differences, train_eval_differences or {}, settings, sizes),
        _pairs_claim(
            CLAIM_TEXTS[7], paper[7], differences, claim1_pairs(sizes), settings, scope, NON_INFERIOR
        ),
    ]


def summarize_claims(
    runs: pd.DataFrame,
    published: Mapping[str, Any],
    *,
    autoencoder: Mapping[str, Any] | None = None,
    pso: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    sizes: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The paper's claims judged on ``runs`` (:func:`trainact.analysis.claims.evaluate_claims`).

    The claims on the networks of Tables 1 and 2 get the per-seed paired differences of the
    *final* epoch's validation accuracy (:func:`paired_differences_pp`, ``endpoint="final"``) for
    each comparison they make on ``sizes`` (default all three), and claim 6 those of the
    eval-mode training accuracy (``final_train_eval_acc``; absent: not run); claims 3 and 4 the
    Section 5 summaries (absent: not run). ``settings`` (the run's config) decides which verdicts
    are previews.
    """
    sizes = list(SIZES) if sizes is None else check_names("sizes", sizes, SIZES)

    def per_seed(
        split: str, pairs: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], dict[int, float]]:
        return {
            (size, better, worse): {
                int(seed): float(value)
                for seed, value in paired_differences_pp(
                    runs, size, split, better, worse, endpoint="final"
                ).items()
            }
            for size, better, worse in pairs
        }

    differences = per_seed("val", compared_pairs(sizes))
    train_eval = per_seed("train_eval", claim1_pairs(sizes)) if "final_train_eval_acc" in runs.columns else {}
    return evaluate_claims(
        differences,
        published,
        train_eval_differences=train_eval,
        autoencoder=autoencoder,
        pso=pso,
        settings=settings,
        sizes=sizes,
    )
