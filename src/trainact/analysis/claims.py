"""The claims check: the paper's claims against the reproduced runs (no torch, no Jinja2).

Endpoint. Every verdict rests on the accuracy of the *final* epoch (the last epoch that finished
normally), fixed in advance and paired by seed. The paper's own measure, the best test accuracy
over the epochs, selects the model on the test set and gains from the noise of the late epochs;
:mod:`trainact.analysis.aggregate` still reports it (Table 1 and 2) beside the final epoch, never for a
verdict.

Each claim of the paper becomes one or more comparisons, each a per-seed quantity (a paired
accuracy difference in points, a difference of epochs, or the PSO/RMSProp ratio) and a claimed
region (e.g. difference > 0). Over the ``n`` seeds we take the mean ``m``, the 95 % Student-t
interval ``m ± t(0.975, n-1) · s / sqrt(n)`` (quantiles of :func:`scipy.stats.t.ppf`), the
one-sided t-test p-value of the wrong direction (the mean beyond the region) and the minimum
detectable difference at 80 % power ``(t(0.975, n-1) + t(0.8, n-1)) · s / sqrt(n)``. With one
seed no spread is known: there is no interval, no p-value and no detectable difference, only the
direction of the single value (*consistent* / *inconsistent* with the claim, always a preview).

A comparison is *supported* when its whole interval lies in the claimed region, *not supported*
when its wrong-direction p-value, Holm-adjusted over the claim's judged comparisons, is below
:data:`FAMILY_ALPHA` (so a claim of six comparisons is not refuted by one mildly negative one),
otherwise *inconclusive under the seed spread*. A claim is supported when all its comparisons
are, not supported when any is, otherwise inconclusive.

Preview. A verdict that rests on fewer than :data:`~trainact.analysis.thresholds.MIN_SEEDS_FOR_VERDICT`
seeds, on a learning-rate schedule shorter than the paper's (fewer than
:data:`~trainact.analysis.thresholds.PAPER_SCHEDULE_EPOCHS` epochs, or a learning-rate drop earlier than
the paper's :data:`~trainact.names.PAPER_LR_BOUNDARIES`), on other learning rates than the
paper's, on fewer training or test images than CIFAR-10's (or on synthetic data), or on another
batch size than the paper preset's is a *preview*: it reads "preview: consistent with the
claim", "preview: inconsistent with the claim" or "preview: inconclusive", never "supported" or
"not supported" (:func:`preview_reasons` says why).

Claims on some sizes (1, 2, 6, 7) can be evaluated on the sizes a run has (``sizes=``): the
verdict then names its scope, e.g. "supported (small networks only)".

The functions here are pure: they judge numbers that :mod:`trainact.analysis.aggregate` has computed
(the paired per-seed differences of :func:`trainact.analysis.aggregate.paired_differences_pp`, the Section
5 summaries) and import nothing of it, so that ``trainact aggregate`` can run the check and store
its result in ``summary.json`` (``aggregate.summarize_claims``); ``trainact sensitivity``
(:mod:`trainact.analysis.sensitivity`) runs the same check per variant. This module formats no numbers:
:mod:`trainact.report.formatting` turns the raw comparisons (mean, interval, p-value, per-seed values)
into the report's text.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy import stats as scipy_stats

from trainact.analysis.labels import MODEL_NAMES
from trainact.analysis.thresholds import (
    ABOUT_HALF,
    MIN_SEEDS_FOR_VERDICT,
    PAPER_CONFIG_BATCH_SIZE,
    PAPER_SCHEDULE_EPOCHS,
    PAPER_TEST_IMAGES,
    PAPER_TRAIN_IMAGES,
)
from trainact.names import PAPER_LEARNING_RATES, PAPER_LR_BOUNDARIES, SIZES, TRAINABLE, check_names

#: Coverage of the two-sided Student-t interval of each comparison.
CONFIDENCE = 0.95
#: Family-wise error rate of "not supported" within one claim (Holm over its judged comparisons).
FAMILY_ALPHA = 0.05
#: Power at which the minimum detectable difference is stated (two-sided 5 %, paired t).
DETECTION_POWER = 0.80
#: Non-inferiority margin of claim 7, in points of test accuracy: "not worse than ReLU" cannot be
#: shown against a margin of zero, and 1 pp is below the seed-to-seed spread of one run on
#: CIFAR-10 at these sizes while far below the paper's improvements (1.3 to 5.1 pp, Table 2).
NON_INFERIORITY_MARGIN_PP = 1.0
#: Claim 3's convergence target: the first epoch whose test accuracy reaches this share of the
#: non-pretrained run's final test accuracy (a share of the run's own endpoint, so that it is
#: reachable by both runs whatever the absolute level); never reached counts as epochs + 1.
CONVERGENCE_SHARE = 0.95
#: How the interval reads where one seed gives none.
NO_INTERVAL = "no interval (1 seed)"
SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_RUN = (
    "supported",
    "not supported",
    "inconclusive under the seed spread",
    "not run",
)
#: The direction of a single seed (no interval): always shown as a preview.
CONSISTENT, INCONSISTENT = "consistent with the claim", "inconsistent with the claim"
PREVIEW_CONSISTENT, PREVIEW_INCONSISTENT, PREVIEW_INCONCLUSIVE = (
    "preview: consistent with the claim",
    "preview: inconsistent with the claim",
    "preview: inconclusive",
)
#: The verdict a preview shows instead of each verdict.
PREVIEW_LABELS = {
    SUPPORTED: PREVIEW_CONSISTENT,
    CONSISTENT: PREVIEW_CONSISTENT,
    NOT_SUPPORTED: PREVIEW_INCONSISTENT,
    INCONSISTENT: PREVIEW_INCONSISTENT,
    INCONCLUSIVE: PREVIEW_INCONCLUSIVE,
}
#: Classes of CIFAR-10: ``dataset.train_per_class`` images of each make the training set, less
#: ``dataset.validation_per_class`` of each held out.
CLASSES = 10
CLAIMS_RULE = (
    "Every verdict rests on the final epoch's test accuracy (the last ok epoch), paired by seed; the paper's "
    "best accuracy over epochs (model selection on the test set) is reported beside it, never judged. Per claim, "
    "each comparison is a per-seed quantity: a paired difference of final accuracy (same size and seed) in "
    "percentage points, a difference of epochs, or the PSO/RMSProp accuracy ratio, with a claimed region. Over "
    "the n seeds we take the mean m, the 95 % Student-t interval m ± t(0.975, n−1)·s/√n (s the sample standard "
    "deviation, t from scipy.stats.t.ppf), the one-sided t-test p-value of the wrong direction (the mean "
    "beyond the claimed region) and the minimum detectable difference at 80 % power, two-sided 5 %: "
    "(t(0.975, n−1) + t(0.8, n−1))·s/√n. With one seed there is no interval, p-value or detectable "
    f'difference ("{NO_INTERVAL}"): the comparison is only consistent or inconsistent with the claim by the '
    "sign of its single value, always a preview. A comparison is supported when its whole interval lies in the "
    "claimed region; not supported when its wrong-direction p-value, Holm-adjusted over the judged comparisons "
    f"of its claim, is below {FAMILY_ALPHA:g} (family-wise); otherwise inconclusive under the seed spread. A "
    "claim is supported when all its comparisons are, not supported when any is, otherwise inconclusive. "
    f"Regions: difference > 0; ratio within [{ABOUT_HALF[0]:g}, {ABOUT_HALF[1]:g}] for \"about half\" and "
    f"< 1 for \"lower than BP\"; non-inferiority difference > −{NON_INFERIORITY_MARGIN_PP:g} pp; generalisation "
    "gap difference < 0."
)
PREVIEW_RULE = (
    f"A verdict is a preview when it rests on fewer than {MIN_SEEDS_FOR_VERDICT} seeds, on a schedule shorter "
    f"than the paper's (fewer than {PAPER_SCHEDULE_EPOCHS} epochs, or a learning-rate drop before epochs "
    f"{list(PAPER_LR_BOUNDARIES)}), on other learning rates than the paper's, on fewer than "
    f"{PAPER_TRAIN_IMAGES:,} training or {PAPER_TEST_IMAGES:,} test images (or synthetic data), or on another "
    f"batch size than {PAPER_CONFIG_BATCH_SIZE} (the paper is silent; our paper config uses it). A preview reads "
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
    ``train.learning_rates``, ``train.batch_size``, ``dataset.train_per_class``,
    ``dataset.test_per_class``, ``dataset.validation_per_class``, ``dataset.synthetic``); keys it
    lacks are not judged, so an empty mapping applies the seed rule only. An empty list: not a
    preview.
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

    batch_size = train.get("batch_size")
    if batch_size is not None and int(batch_size) != PAPER_CONFIG_BATCH_SIZE:
        reasons.append(f"batch size {int(batch_size)} (paper silent; paper config {PAPER_CONFIG_BATCH_SIZE})")

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
        if synthetic.get("test_per_class") is not None and CLASSES * int(synthetic["test_per_class"]) < PAPER_TEST_IMAGES:
            images = CLASSES * int(synthetic["test_per_class"])
            reasons.append(f"{images:,} synthetic test images (paper: {PAPER_TEST_IMAGES:,})")
    else:
        images = (PAPER_TRAIN_IMAGES if per_class is None else CLASSES * int(per_class)) - held_out
        if images < PAPER_TRAIN_IMAGES:
            reasons.append(f"{images:,} training images{held_out_note} (paper: {PAPER_TRAIN_IMAGES:,})")
        test_per_class = dataset.get("test_per_class")
        if test_per_class is not None and CLASSES * int(test_per_class) < PAPER_TEST_IMAGES:
            reasons.append(f"{CLASSES * int(test_per_class):,} test images (paper: {PAPER_TEST_IMAGES:,})")
    return reasons


def verdict_label(verdict: str, preview: bool, scope: str | None = None) -> str:
    """The verdict as shown: its preview label when ``preview``, ``(scope)`` appended when given."""
    text = PREVIEW_LABELS.get(verdict, verdict) if preview else verdict
    return f"{text} ({scope})" if scope and verdict != NOT_RUN else text


# ---------------------------------------------------------------------------------- evidence


def t_quantile(probability: float, dof: int) -> float:
    """Student's t quantile ``t(probability, dof)`` (:func:`scipy.stats.t.ppf`)."""
    return float(scipy_stats.t.ppf(probability, dof))


@dataclass(frozen=True)
class Region:
    """The region a claim puts a comparison in: ``low < x < high``, each bound open or closed.

    An infinite bound is no bound. ``contains(low, high)``: the whole interval lies inside.
    """

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = True
    open_high: bool = True

    def contains(self, low: float, high: float) -> bool:
        """Whether ``[low, high]`` lies entirely in the region."""
        above = low > self.low if self.open_low else low >= self.low
        below = high < self.high if self.open_high else high <= self.high
        return above and below

    def text(self, unit: str = "") -> str:
        """The region as the report states it: ``> 0 pp``, ``< 1``, ``in [0.4, 0.6]``."""
        suffix = f" {unit}" if unit else ""
        if math.isinf(self.low):
            return f"{'<' if self.open_high else '≤'} {self.high:g}{suffix}"
        if math.isinf(self.high):
            return f"{'>' if self.open_low else '≥'} {self.low:g}{suffix}".replace("-", "−")
        brackets = ("(" if self.open_low else "[", ")" if self.open_high else "]")
        return f"in {brackets[0]}{self.low:g}, {self.high:g}{brackets[1]}{suffix}"


#: Difference > 0 (claims 1, 2, 3 and 5).
POSITIVE = Region(low=0.0)
#: Difference < 0 (claim 6's generalisation gap).
NEGATIVE = Region(high=0.0)
#: Claim 4: "about half" (a closed region) and "lower than BP" (ratio < 1).
ABOUT_HALF_REGION = Region(ABOUT_HALF[0], ABOUT_HALF[1], open_low=False, open_high=False)
BELOW_ONE = Region(high=1.0)
#: Claim 7: not worse than ReLU by more than the margin.
NON_INFERIOR = Region(low=-NON_INFERIORITY_MARGIN_PP)


@dataclass(frozen=True)
class Evidence:
    """A per-seed quantity: its mean, interval, test of the wrong direction, and own verdict.

    ``low``/``high``: the 95 % interval (``None`` with one seed). ``claimed``: the region as
    text. ``p_wrong``: one-sided t-test p-value that the mean lies beyond the claimed region;
    ``p_holm``: that p-value Holm-adjusted over the judged comparisons of the claim (``None`` for
    context quantities and with one seed). ``min_detectable``: the smallest difference the seeds
    detect with 80 % power, two-sided 5 % (``None`` with one seed). ``judged`` is false for context
    quantities that do not enter the claim's verdict; ``note`` is shown after the numbers.
    """

    label: str
    values: tuple[float, ...]
    mean: float
    low: float | None
    high: float | None
    verdict: str
    unit: str = "pp"
    judged: bool = True
    note: str = ""
    claimed: str = ""
    p_wrong: float | None = None
    p_holm: float | None = None
    min_detectable: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values (the tuple as a list), ready for JSON."""
        return {**asdict(self), "values": list(self.values)}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan


def interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """Mean and the 95 % Student-t interval of ``values``; ``(mean, None, None)`` for one value,
    whose spread is unknown."""
    n = len(values)
    if n == 0:
        raise ValueError("no values for an interval")
    mean, std = _mean_std(values)
    if n == 1:
        return mean, None, None
    half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * std / math.sqrt(n)
    return mean, mean - half, mean + half


def min_detectable_difference(values: Sequence[float]) -> float | None:
    """``(t(0.975, n-1) + t(0.8, n-1)) · s / sqrt(n)``: the paired difference a two-sided 5 % t-test
    on these ``n`` seeds finds with 80 % power, for their spread ``s``; ``None`` for one value."""
    n = len(values)
    if n < 2:
        return None
    _, std = _mean_std(values)
    factor = t_quantile(0.5 + CONFIDENCE / 2, n - 1) + t_quantile(DETECTION_POWER, n - 1)
    return factor * std / math.sqrt(n)


def one_sided_p(values: Sequence[float], bound: float, greater: bool) -> float | None:
    """p-value of the one-sample t-test of "mean > bound" (``greater``) or "mean < bound".

    ``None`` for one value. Without spread the p-value is 0 when the mean lies on the tested side
    and 1 otherwise (the t statistic is infinite or undefined).
    """
    n = len(values)
    if n < 2:
        return None
    mean, std = _mean_std(values)
    if std == 0:
        return 0.0 if (mean > bound if greater else mean < bound) else 1.0
    statistic = (mean - bound) / (std / math.sqrt(n))
    distribution = scipy_stats.t(n - 1)
    return float(distribution.sf(statistic) if greater else distribution.cdf(statistic))


def wrong_direction_p(values: Sequence[float], region: Region) -> float | None:
    """One-sided p-value that the mean lies beyond ``region`` (below its low or above its high
    bound, the smaller of the two where it has both); ``None`` for one value."""
    tests = [one_sided_p(values, region.low, greater=False)] if math.isfinite(region.low) else []
    tests += [one_sided_p(values, region.high, greater=True)] if math.isfinite(region.high) else []
    return None if any(p is None for p in tests) else min(tests)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (family-wise error control)."""
    m = len(p_values)
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(sorted(range(m), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def own_verdict(evidence: Evidence, region: Region) -> str:
    """One comparison's verdict from its interval and its Holm-adjusted p-value (module doc)."""
    if evidence.low is None or evidence.high is None:
        return CONSISTENT if region.contains(evidence.mean, evidence.mean) else INCONSISTENT
    if region.contains(evidence.low, evidence.high):
        return SUPPORTED
    if evidence.p_holm is not None and evidence.p_holm < FAMILY_ALPHA:
        return NOT_SUPPORTED
    return INCONCLUSIVE


@dataclass(frozen=True)
class Comparison:
    """A comparison to judge: its label, per-seed values, claimed region and role."""

    label: str
    values: Sequence[float]
    region: Region = POSITIVE
    unit: str = "pp"
    judged: bool = True
    note: str = ""


def judge(comparisons: Sequence[Comparison]) -> list[Evidence]:
    """The evidence of one claim's comparisons: intervals, p-values, Holm over the judged ones
    (context comparisons are a family of one each), and each comparison's own verdict."""
    measured = []
    for c in comparisons:
        values = tuple(float(v) for v in c.values)
        mean, low, high = interval(values)
        measured.append(
            Evidence(
                c.label,
                values,
                mean,
                low,
                high,
                INCONCLUSIVE,
                unit=c.unit,
                judged=c.judged,
                note=c.note,
                claimed=c.region.text("" if c.unit == "ratio" else c.unit),
                p_wrong=wrong_direction_p(values, c.region),
                min_detectable=min_detectable_difference(values),
            )
        )
    family = [i for i, e in enumerate(measured) if e.judged and e.p_wrong is not None]
    adjusted = dict(zip(family, holm_adjusted([measured[i].p_wrong for i in family])))
    judged = []
    for i, (c, e) in enumerate(zip(comparisons, measured)):
        e = dataclasses.replace(e, p_holm=adjusted.get(i, None if e.judged else e.p_wrong))
        judged.append(dataclasses.replace(e, verdict=own_verdict(e, c.region)))
    return judged


def combine(verdicts: Sequence[str]) -> str:
    """A claim's verdict from its comparisons': any not supported -> not supported; all supported
    -> supported; all supported or consistent (one seed) -> consistent; any inconsistent ->
    inconsistent; else inconclusive."""
    if any(v == NOT_SUPPORTED for v in verdicts):
        return NOT_SUPPORTED
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if all(v in (SUPPORTED, CONSISTENT) for v in verdicts):
        return CONSISTENT
    if any(v == INCONSISTENT for v in verdicts):
        return INCONSISTENT
    return INCONCLUSIVE


# ------------------------------------------------------------------------------------ claims


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


@dataclass(frozen=True)
class ClaimText:
    """What a claim says: its number, statement (quoting the paper), short form and source."""

    number: int
    claim: str
    short: str
    source: str


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

CLAIM_TEXTS = {
    1: ClaimText(
        1,
        "Trainable activations (Fourier-CNN and LC-CNN) reach a higher validation accuracy than the ReLU CNN "
        "at every size.",
        "Fourier-CNN and LC-CNN beat the ReLU CNN at every size",
        "Section 3",
    ),
    2: ClaimText(
        2,
        "Fourier-CNN is the best of the three on small networks, LC-CNN the best on large networks "
        "(validation accuracy).",
        "Fourier-CNN best on small networks, LC-CNN best on large ones",
        "Sections 3 and 6",
    ),
    3: ClaimText(
        3,
        "Autoencoder pretraining improves the middle Fourier-CNN: its validation accuracy \"starts from a higher "
        "value\", it \"converge[s] faster\" and reaches a higher accuracy.",
        "Autoencoder pretraining improves the middle Fourier-CNN",
        "Sections 5.1 and 6",
    ),
    4: ClaimText(
        4,
        "PSO training reaches a lower accuracy than BP (RMSProp), \"about half\" of it (middle CNN).",
        "PSO reaches about half of RMSProp's accuracy (middle CNN)",
        "Sections 5.2 and 6",
    ),
    5: ClaimText(
        5,
        "The improvement of the trainable activations over the ReLU CNN \"is more significant on smaller "
        "networks\" (validation accuracy).",
        "The improvement over the ReLU CNN is larger on smaller networks",
        "Section 3",
    ),
    6: ClaimText(
        6,
        "At middle and large size the trainable networks reach \"higher accuracy on validation data but lower "
        "accuracy on training data\" than the ReLU CNN (\"better generalization ability\"): a smaller gap "
        "between training and validation accuracy.",
        "Trainable activations generalise better at middle and large size (smaller train − test gap)",
        "Section 4.1",
    ),
    7: ClaimText(
        7,
        "Trainable activations \"will not be worse than simple non-trainable activation functions if it is "
        f"properly trained\": validation accuracy not below the ReLU CNN's by more than "
        f"{NON_INFERIORITY_MARGIN_PP:g} pp at any size.",
        f"Trainable activations are not worse than ReLU (margin {NON_INFERIORITY_MARGIN_PP:g} pp)",
        "Sections 2.2 and 6",
    ),
}


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
                Comparison(f"{label}: gap (train eval − test)", [train[s] - test[s] for s in seeds], NEGATIVE),
                Comparison(f"{label}: train eval acc (context)", [train[s] for s in seeds], NEGATIVE, judged=False),
                Comparison(f"{label}: test acc (context)", [test[s] for s in seeds], POSITIVE, judged=False),
            ]
    return comparisons, missing


def evaluate_claims(
    differences: Mapping[tuple[str, str, str], Mapping[int, float]],
    published: Mapping[str, Any],
    *,
    train_eval_differences: Mapping[tuple[str, str, str], Mapping[int, float]] | None = None,
    autoencoder: Mapping[str, Any] | None = None,
    pso: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    sizes: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The paper's claims (1-7), each with its evidence over seeds and a verdict (module doc).

    ``differences``: per ``(size, better, worse)`` of :func:`compared_pairs` the per-seed paired
    differences of final validation accuracy in points, as ``{seed: value}`` (seeds both runs
    have; :func:`trainact.analysis.aggregate.paired_differences_pp`); a comparison absent or empty was not
    run. ``train_eval_differences``: the same for the eval-mode training accuracy (``train_eval_acc``;
    absent or empty: claim 6 not run). ``published``: the paper's tables
    (:func:`trainact.analysis.aggregate.load_published`). ``autoencoder``, ``pso``: the Section 5 summaries
    of ``trainact aggregate`` (``per_seed`` rows with ``diff_*_val_acc_pp``,
    ``diff_epochs_to_target``, ``final_ratio``, ``ratio``); absent or not ``"ok"``: claims 3 and 4
    not run. ``settings``: the run's config, for :func:`preview_reasons` (empty: the seed rule
    only). ``sizes``: evaluate the claims on these sizes only (default all three: a missing size
    makes claims about it "not run").

    Each claim is a dict: ``number, claim, short, source, paper`` (``source`` and ``values`` of
    the paper's own numbers), ``scope`` (``None`` or e.g. "small networks only"),
    ``comparisons`` (:meth:`Evidence.as_dict` each), ``missing`` (labels of comparisons without
    runs), ``n_seeds``, ``preview``, ``preview_reasons``, ``outcome`` (supported / not supported /
    inconclusive / consistent / inconsistent / not run) and ``verdict`` (the outcome as shown:
    preview label, scope).
    """
    settings = settings if settings is not None else {}
    sizes = list(SIZES) if sizes is None else check_names("sizes", sizes, SIZES)
    train_eval_differences = train_eval_differences or {}
    scope = scope_text(sizes)
    paper_t1 = {(r["size"], r["activation"]): r for r in published["table1"]}
    paper_t2 = {(r["size"], r["split"], r["activation"]): r["improvement_pp"] for r in published["table2"]}

    def short_name(activation: str) -> str:
        return MODEL_NAMES[activation].removesuffix("-CNN")

    t2_val = {
        "source": "Table 2 (validation, pp)",
        "values": [
            {"label": f"{size} {short_name(a)}", "value": paper_t2[(size, "val", a)], "unit": "pp"}
            for size in SIZES
            for a in TRAINABLE
        ],
    }
    claims = [_pairs_claim(CLAIM_TEXTS[1], t2_val, differences, claim1_pairs(sizes), settings, scope)]

    pairs = [p for p in CLAIM2_PAIRS if p[0] in sizes]
    paper = {
        "source": "Table 1 (validation accuracy)",
        "values": [
            {"label": f"{size} {short_name(a)}", "value": paper_t1[(size, a)]["val_acc"], "unit": "acc"}
            for size, order in (("small", ("fourier", "lc", "relu")), ("large", ("lc", "fourier", "relu")))
            for a in order
        ],
    }
    if pairs:
        scope2 = _partial_scope(sizes, ("small", "large"))
        claims.append(_pairs_claim(CLAIM_TEXTS[2], paper, differences, pairs, settings, scope2))
    else:
        missing = [_pair_label(*p) for p in CLAIM2_PAIRS]
        claims.append(_claim(CLAIM_TEXTS[2], paper, settings, missing=missing))

    paper = {"source": "Figure 8 only (no numbers)", "values": []}
    autoencoder = autoencoder or {"status": NOT_RUN}
    if autoencoder.get("status") != "ok":
        claims.append(_claim(CLAIM_TEXTS[3], paper, settings, not_run=True))
    else:
        rows = autoencoder["per_seed"]
        target = f"{CONVERGENCE_SHARE:g} of the not pretrained run's final val acc"
        comparisons = [
            Comparison("final val acc, pretrained − not pretrained", [r["diff_final_val_acc_pp"] for r in rows]),
            Comparison("epoch-1 val acc, pretrained − not pretrained", [r["diff_first_val_acc_pp"] for r in rows]),
            Comparison(
                "epochs to the target, not pretrained − pretrained",
                [r["diff_epochs_to_target"] for r in rows],
                unit="epochs",
                note=f"target: {target}; never reached counts as epochs + 1",
            ),
            Comparison("best val acc (the paper's measure; context)", [r["diff_best_val_acc_pp"] for r in rows],
                       judged=False),
        ]  # fmt: skip
        claims.append(_claim(CLAIM_TEXTS[3], paper, settings, comparisons))

    paper = {"source": "Figure 9 only (no numbers)", "values": []}
    pso = pso or {"status": NOT_RUN}
    if pso.get("status") != "ok":
        claims.append(_claim(CLAIM_TEXTS[4], paper, settings, not_run=True))
    else:
        final = [r["final_ratio"] for r in pso["per_seed"]]
        label = "PSO final test acc / RMSProp final val acc"
        comparisons = [
            Comparison(f"{label}: about half", final, ABOUT_HALF_REGION, unit="ratio"),
            Comparison(f"{label}: lower than BP", final, BELOW_ONE, unit="ratio"),
            Comparison("PSO best test acc / RMSProp best val acc (the paper's measure; context)",
                       [r["ratio"] for r in pso["per_seed"]], ABOUT_HALF_REGION, unit="ratio", judged=False),
        ]  # fmt: skip
        claims.append(_claim(CLAIM_TEXTS[4], paper, settings, comparisons))

    paper = {
        "source": "Table 2 (validation, pp), smaller minus large",
        "values": [
            {
                "label": f"{short_name(a)} {size} − large",
                "value": round(paper_t2[(size, "val", a)] - paper_t2[("large", "val", a)], 2),
                "unit": "pp",
            }
            for a in TRAINABLE
            for size in ("small", "middle")
        ],
    }
    if "small" in sizes and "large" in sizes:
        comparisons, missing = _size_trend_comparisons(differences, sizes)
        claims.append(_claim(CLAIM_TEXTS[5], paper, settings, comparisons, missing))
    else:
        missing = [f"{MODEL_NAMES[a]} − {MODEL_NAMES['relu']}: small − large" for a in TRAINABLE]
        claims.append(_claim(CLAIM_TEXTS[5], paper, settings, missing=missing))

    paper = {
        "source": "Table 2 (training − validation improvement, pp)",
        "values": [
            {
                "label": f"{size} {short_name(a)}",
                "value": round(paper_t2[(size, "train", a)] - paper_t2[(size, "val", a)], 2),
                "unit": "pp",
            }
            for size in GENERALISATION_SIZES
            for a in TRAINABLE
        ],
    }
    if not any(train_eval_differences.values()):
        comparisons, missing = [], [NO_TRAIN_EVAL]
    elif not any(s in sizes for s in GENERALISATION_SIZES):
        comparisons, missing = [], [f"{size} networks" for size in GENERALISATION_SIZES]
    else:
        comparisons, missing = _generalisation_comparisons(differences, train_eval_differences, sizes)
    scope6 = _partial_scope(sizes, GENERALISATION_SIZES)
    claims.append(_claim(CLAIM_TEXTS[6], paper, settings, comparisons, missing, scope6))

    paper = {"source": "Sections 2.2 and 6 (an argument, no numbers)", "values": []}
    claims.append(
        _pairs_claim(CLAIM_TEXTS[7], paper, differences, claim1_pairs(sizes), settings, scope, NON_INFERIOR)
    )
    return claims
