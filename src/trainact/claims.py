"""The claims check: the paper's four claims against the reproduced runs (no torch, no Jinja2).

Each claim of the paper becomes one or more comparisons, each a per-seed quantity (a paired
accuracy difference in points, or the PSO/RMSProp ratio). Over the ``n`` seeds we take the mean
``m`` and the 95 % Student-t interval ``m ± t(0.975, n-1) · s / sqrt(n)``; with one seed no spread
is known and the interval is ``m ± 2`` points (``± 0.05`` for the ratio), an assumed seed noise.
A comparison is *supported* when the whole interval lies in the claimed region, *not supported*
when it lies entirely outside it, otherwise *inconclusive under the seed spread*. A claim made of
several comparisons is supported when all are, not supported when any is not, otherwise
inconclusive.

Preview. A verdict that rests on fewer than :data:`~trainact.settings.MIN_SEEDS_FOR_VERDICT`
seeds, on a learning-rate schedule shorter than the paper's (fewer than
:data:`~trainact.settings.PAPER_SCHEDULE_EPOCHS` epochs, or a learning-rate drop earlier than
the paper's :data:`~trainact.settings.PAPER_LR_BOUNDARIES`), on other learning rates than the
paper's, or on fewer training images than CIFAR-10's 50,000 (or on synthetic data) is a
*preview*: it reads "preview: consistent with the claim", "preview: inconsistent with the
claim" or "preview: inconclusive", never "supported" or "not supported"
(:func:`preview_reasons` says why).

Claims 1 and 2 can be evaluated on the sizes a run has (``sizes=``): the verdict then names its
scope, e.g. "supported (small networks only)", and claim 2 keeps only its comparisons on those
sizes.

The functions here are pure: they judge numbers that :mod:`trainact.aggregate` has computed
(the paired per-seed differences of :func:`trainact.aggregate.paired_differences_pp`, the Section
5 summaries) and import nothing of it, so that ``trainact aggregate`` can run the check and store
its result in ``summary.json`` (``aggregate.summarize_claims``); ``trainact sensitivity``
(:mod:`trainact.sensitivity`) runs the same check per variant. This module formats no numbers:
:mod:`trainact.formatting` turns the raw comparisons (mean, interval, per-seed values) into the
report's text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from trainact.paper_facts import ABOUT_HALF, MODEL_NAMES, SIZES, TRAINABLE, check_names
from trainact.settings import (
    MIN_SEEDS_FOR_VERDICT,
    PAPER_LEARNING_RATES,
    PAPER_LR_BOUNDARIES,
    PAPER_SCHEDULE_EPOCHS,
    PAPER_TRAIN_IMAGES,
)

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
PREVIEW_CONSISTENT, PREVIEW_INCONSISTENT, PREVIEW_INCONCLUSIVE = (
    "preview: consistent with the claim",
    "preview: inconsistent with the claim",
    "preview: inconclusive",
)
#: The verdict a preview shows instead of each region verdict.
PREVIEW_LABELS = {
    SUPPORTED: PREVIEW_CONSISTENT,
    NOT_SUPPORTED: PREVIEW_INCONSISTENT,
    INCONCLUSIVE: PREVIEW_INCONCLUSIVE,
}
#: Classes of CIFAR-10: ``dataset.train_per_class`` images of each make the training set, less
#: ``dataset.validation_per_class`` of each held out.
CLASSES = 10
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
PREVIEW_RULE = (
    f"A verdict is a preview when it rests on fewer than {MIN_SEEDS_FOR_VERDICT} seeds, on a schedule shorter "
    f"than the paper's (fewer than {PAPER_SCHEDULE_EPOCHS} epochs, or a learning-rate drop before epochs "
    f"{list(PAPER_LR_BOUNDARIES)}), on other learning rates than the paper's, or on fewer than "
    f"{PAPER_TRAIN_IMAGES:,} training images (or synthetic data). A preview reads "
    f'"{PREVIEW_CONSISTENT}", "{PREVIEW_INCONSISTENT}" or "{PREVIEW_INCONCLUSIVE}", never '
    f'"{SUPPORTED}" or "{NOT_SUPPORTED}".'
)


# ---------------------------------------------------------------------------------- preview


def _epochs_list(values: Sequence[Any]) -> str:
    return "[" + ", ".join(str(int(v)) for v in values) + "]"


def _rates_list(values: Sequence[Any]) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in values) + "]"


def preview_reasons(settings: Mapping[str, Any], n_seeds: int) -> list[str]:
    """Why a verdict resting on ``n_seeds`` seeds of a run with config ``settings`` is a preview.

    ``settings`` is the run's whole config (keys ``train.epochs``, ``train.lr_boundaries``,
    ``train.learning_rates``, ``dataset.train_per_class``, ``dataset.validation_per_class``,
    ``dataset.synthetic``); keys it lacks are not judged, so an empty mapping applies the seed
    rule only. An empty list: not a preview.
    """
    if not isinstance(settings, Mapping):
        raise ValueError(f"settings must be a mapping (the run's config), got {settings!r}")
    reasons = []
    if n_seeds < MIN_SEEDS_FOR_VERDICT:
        reasons.append(f"{n_seeds} seed{'' if n_seeds == 1 else 's'} (< {MIN_SEEDS_FOR_VERDICT})")

    train = settings.get("train") or {}
    epochs, boundaries, rates = train.get("epochs"), train.get("lr_boundaries"), train.get("learning_rates")
    few_epochs = epochs is not None and int(epochs) < PAPER_SCHEDULE_EPOCHS
    early = boundaries is not None and any(int(b) < p for b, p in zip(boundaries, PAPER_LR_BOUNDARIES))
    if few_epochs or early:
        ours = ([f"{int(epochs)} epochs"] if epochs is not None else []) + (
            [f"learning-rate drops after epochs {_epochs_list(boundaries)}"] if boundaries is not None else []
        )
        paper = _epochs_list(PAPER_LR_BOUNDARIES)
        paper = paper if boundaries is not None else f"learning-rate drops after epochs {paper}"
        reasons.append(", ".join(ours) + f" (paper: {paper} over at least {PAPER_SCHEDULE_EPOCHS} epochs)")
    if rates is not None and (
        len(rates) != len(PAPER_LEARNING_RATES)
        or any(not math.isclose(float(r), p, rel_tol=1e-9) for r, p in zip(rates, PAPER_LEARNING_RATES))
    ):
        reasons.append(f"learning rates {_rates_list(rates)} (paper: {_rates_list(PAPER_LEARNING_RATES)})")

    dataset = settings.get("dataset") or {}
    synthetic, per_class = dataset.get("synthetic"), dataset.get("train_per_class")
    # A validation split is held out of the training images: the networks train on the rest.
    held_out = CLASSES * int(dataset.get("validation_per_class") or 0)
    held_out_note = f", {held_out:,} held out for validation" if held_out else ""
    if synthetic:
        images = CLASSES * int(synthetic["train_per_class"]) - held_out
        reasons.append(
            f"synthetic data, {images:,} training images{held_out_note} (paper: CIFAR-10, {PAPER_TRAIN_IMAGES:,})"
        )
    else:
        images = (PAPER_TRAIN_IMAGES if per_class is None else CLASSES * int(per_class)) - held_out
        if images < PAPER_TRAIN_IMAGES:
            reasons.append(f"{images:,} training images{held_out_note} (paper: {PAPER_TRAIN_IMAGES:,})")
    return reasons


def verdict_label(verdict: str, preview: bool, scope: str | None = None) -> str:
    """The verdict as shown: its preview label when ``preview``, ``(scope)`` appended when given."""
    text = PREVIEW_LABELS.get(verdict, verdict) if preview else verdict
    return f"{text} ({scope})" if scope and verdict != NOT_RUN else text


# ---------------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class Evidence:
    """A per-seed quantity summarised by its mean and interval, and the verdict on its region.

    ``judged`` is false for context quantities that do not enter the claim's verdict; ``note``
    is shown after the numbers (e.g. the claimed region).
    """

    label: str
    values: tuple[float, ...]
    mean: float
    low: float
    high: float
    verdict: str
    unit: str = "pp"
    judged: bool = True
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain values (the tuple as a list), ready for JSON."""
        return {**asdict(self), "values": list(self.values)}


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


def positive_evidence(label: str, values: Sequence[float], judged: bool = True) -> Evidence:
    """Evidence for "this per-seed difference (pp) is positive"."""
    values = tuple(float(v) for v in values)
    mean, low, high = interval(values, SINGLE_SEED_HALF_WIDTH_PP)
    verdict = region_verdict(low, high, (0.0, math.inf), open_low=True)
    return Evidence(label, values, mean, low, high, verdict, judged=judged)


def combine(verdicts: Sequence[str]) -> str:
    """All supported -> supported; any not supported -> not supported; else inconclusive."""
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if any(v == NOT_SUPPORTED for v in verdicts):
        return NOT_SUPPORTED
    return INCONCLUSIVE


# ------------------------------------------------------------------------------------ claims


def scope_text(sizes: Sequence[str]) -> str | None:
    """``"small networks only"`` for a subset of the sizes; ``None`` for all three."""
    if set(sizes) >= set(SIZES):
        return None
    names = list(sizes)
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{joined} networks only"


def _claim(
    number: int,
    claim: str,
    short: str,
    source: str,
    paper: Mapping[str, Any],
    verdict: str,
    settings: Mapping[str, Any],
    evidence: Sequence[Evidence] = (),
    missing: Sequence[str] = (),
    scope: str | None = None,
) -> dict[str, Any]:
    """One claim: its raw comparisons, the verdict (``outcome``) and the label shown (``verdict``)."""
    judged = [e for e in evidence if e.judged]
    n_seeds = min(len(e.values) for e in judged) if judged and verdict != NOT_RUN else None
    reasons = preview_reasons(settings, n_seeds) if n_seeds is not None else []
    return {
        "number": number,
        "claim": claim,
        "short": short,
        "source": source,
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


def claim1_pairs(sizes: Sequence[str]) -> list[tuple[str, str, str]]:
    """Claim 1's comparisons ``(size, better, worse)`` on ``sizes``: each trainable CNN over ReLU."""
    return [(size, activation, "relu") for size in sizes for activation in TRAINABLE]


def compared_pairs(sizes: Sequence[str]) -> list[tuple[str, str, str]]:
    """Every ``(size, better, worse)`` whose paired validation differences claims 1 and 2 judge
    on ``sizes``: what :func:`evaluate_claims` looks up in its ``differences``."""
    pairs = claim1_pairs(sizes) + [p for p in CLAIM2_PAIRS if p[0] in sizes]
    return list(dict.fromkeys(pairs))


def _comparison_claim(
    number: int,
    claim: str,
    short: str,
    source: str,
    paper: Mapping[str, Any],
    differences: Mapping[tuple[str, str, str], Sequence[float]],
    pairs: Sequence[tuple[str, str, str]],
    settings: Mapping[str, Any],
    scope: str | None,
) -> dict[str, Any]:
    evidence, missing = [], []
    for size, better, worse in pairs:
        label = f"{size}: {MODEL_NAMES[better]} − {MODEL_NAMES[worse]}"
        values = differences.get((size, better, worse), ())
        if len(values):
            evidence.append(positive_evidence(label, values))
        else:
            missing.append(label)
    verdict = NOT_RUN if missing or not evidence else combine([e.verdict for e in evidence])
    return _claim(number, claim, short, source, paper, verdict, settings, evidence, missing, scope)


def evaluate_claims(
    differences: Mapping[tuple[str, str, str], Sequence[float]],
    published: Mapping[str, Any],
    *,
    autoencoder: Mapping[str, Any] | None = None,
    pso: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    sizes: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The four claims of the paper, each with its evidence over seeds and a verdict (module doc).

    ``differences``: per ``(size, better, worse)`` of :func:`compared_pairs` the per-seed paired
    differences of best validation accuracy in points (seeds both runs have;
    :func:`trainact.aggregate.paired_differences_pp`); a comparison absent or empty was not run.
    ``published``: the paper's tables (:func:`trainact.aggregate.load_published`).
    ``autoencoder``, ``pso``: the Section 5 summaries of ``trainact aggregate`` (``per_seed``
    rows with ``diff_*_val_acc_pp``, ``ratio``); absent or not ``"ok"``: claims 3 and 4 not run.
    ``settings``: the run's config, for :func:`preview_reasons` (empty: the seed rule only).
    ``sizes``: evaluate claims 1 and 2 on these sizes only (default all three: a missing size
    makes them "not run").

    Each claim is a dict: ``number, claim, short, source, paper`` (``source`` and ``values`` of
    the paper's own numbers), ``scope`` (``None`` or e.g. "small networks only"),
    ``comparisons`` (:meth:`Evidence.as_dict` each), ``missing`` (labels of comparisons without
    runs), ``n_seeds``, ``preview``, ``preview_reasons``, ``outcome`` (supported / not supported /
    inconclusive / not run) and ``verdict`` (the outcome as shown: preview label, scope).
    """
    settings = settings if settings is not None else {}
    sizes = list(SIZES) if sizes is None else check_names("sizes", sizes, SIZES)
    scope = scope_text(sizes)
    paper_t1 = {(r["size"], r["activation"]): r["val_acc"] for r in published["table1"]}
    paper_t2 = {(r["size"], r["split"], r["activation"]): r["improvement_pp"] for r in published["table2"]}
    claims = []

    paper = {
        "source": "Table 2 (validation, pp)",
        "values": [
            {
                "label": f"{size} {MODEL_NAMES[a].removesuffix('-CNN')}",
                "value": paper_t2[(size, "val", a)],
                "unit": "pp",
            }
            for size in SIZES
            for a in TRAINABLE
        ],
    }
    claims.append(
        _comparison_claim(
            1,
            "Trainable activations (Fourier-CNN and LC-CNN) reach a higher validation accuracy than the ReLU CNN "
            "at every size.",
            "Fourier-CNN and LC-CNN beat the ReLU CNN at every size",
            "Section 3",
            paper,
            differences,
            claim1_pairs(sizes),
            settings,
            scope,
        )
    )

    pairs = [p for p in CLAIM2_PAIRS if p[0] in sizes]
    # claim 2 is about the small and the large networks: its scope is the part of those present
    claim2_sizes = [s for s in sizes if s in ("small", "large")]
    scope2 = None if len(claim2_sizes) == 2 else scope_text(claim2_sizes) if claim2_sizes else None
    paper = {
        "source": "Table 1 (validation accuracy)",
        "values": [
            {"label": f"{size} {MODEL_NAMES[a].removesuffix('-CNN')}", "value": paper_t1[(size, a)], "unit": "acc"}
            for size, order in (("small", ("fourier", "lc", "relu")), ("large", ("lc", "fourier", "relu")))
            for a in order
        ],
    }
    claim2 = (
        "Fourier-CNN is the best of the three on small networks, LC-CNN the best on large networks "
        "(validation accuracy)."
    )
    short2 = "Fourier-CNN best on small networks, LC-CNN best on large ones"
    if pairs:
        claims.append(
            _comparison_claim(2, claim2, short2, "Sections 3 and 6", paper, differences, pairs, settings, scope2)
        )
    else:
        missing = [f"{size}: {MODEL_NAMES[b]} − {MODEL_NAMES[w]}" for size, b, w in CLAIM2_PAIRS]
        claims.append(_claim(2, claim2, short2, "Sections 3 and 6", paper, NOT_RUN, settings, missing=missing))

    claim3 = "Autoencoder pretraining improves the middle Fourier-CNN (higher best validation accuracy)."
    short3 = "Autoencoder pretraining improves the middle Fourier-CNN"
    paper = {"source": "Figure 8 only (no numbers)", "values": []}
    autoencoder = autoencoder or {"status": NOT_RUN}
    if autoencoder.get("status") != "ok":
        claims.append(_claim(3, claim3, short3, "Sections 5.1 and 6", paper, NOT_RUN, settings))
    else:
        rows = autoencoder["per_seed"]
        evidence = [
            positive_evidence("best val acc, pretrained − not pretrained", [r["diff_best_val_acc_pp"] for r in rows]),
            positive_evidence("epoch-1 val acc (context)", [r["diff_first_val_acc_pp"] for r in rows], judged=False),
            positive_evidence("final val acc (context)", [r["diff_final_val_acc_pp"] for r in rows], judged=False),
        ]
        claims.append(_claim(3, claim3, short3, "Sections 5.1 and 6", paper, evidence[0].verdict, settings, evidence))

    claim4 = "PSO training reaches about half of the accuracy that BP (RMSProp) reaches (middle CNN)."
    short4 = "PSO reaches about half of RMSProp's accuracy (middle CNN)"
    paper = {"source": "Figure 9 only (no numbers)", "values": []}
    pso = pso or {"status": NOT_RUN}
    if pso.get("status") != "ok":
        claims.append(_claim(4, claim4, short4, "Sections 5.2 and 6", paper, NOT_RUN, settings))
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
            note=f"claimed region [{ABOUT_HALF[0]:g}, {ABOUT_HALF[1]:g}]",
        )
        claims.append(_claim(4, claim4, short4, "Sections 5.2 and 6", paper, ratio.verdict, settings, [ratio]))
    return claims
