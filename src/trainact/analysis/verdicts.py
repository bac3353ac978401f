"""From evidence to a verdict: the words of the verdicts, each comparison's evidence over the
seeds (:func:`judge`) and how a claim's comparisons combine into its verdict.

A comparison is *supported* when its whole interval lies in the claimed region, *not supported*
when its wrong-direction p-value, Holm-adjusted over the claim's judged comparisons, is below
:data:`FAMILY_ALPHA` (so a claim of six comparisons is not refuted by one mildly negative one),
otherwise *inconclusive under the seed spread*. With one seed there is no interval, only the
direction of the single value (*consistent* / *inconsistent* with the claim, always a preview).
A claim is supported when all its comparisons are, not supported when any is, otherwise
inconclusive. The numbers come from :mod:`trainact.analysis.statistics`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from trainact.analysis.statistics import (
    Region,
    holm_adjusted,
    interval,
    min_detectable_difference,
    wrong_direction_p,
)

#: Family-wise error rate of "not supported" within one claim (Holm over its judged comparisons).
FAMILY_ALPHA = 0.05
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
#: How a line over the schedule axis (:mod:`trainact.analysis.schedule_axis`) begins when a claim
#: is consistent at one L and inconsistent at another; the report shows such a claim so.
DEPENDS = "depends on the schedule"
#: Difference > 0 (claims 1, 2, 3 and 5).
POSITIVE = Region(low=0.0)
#: Difference < 0 (claim 6's generalisation gap).
NEGATIVE = Region(high=0.0)


def verdict_label(verdict: str, preview: bool, scope: str | None = None) -> str:
    """The verdict as shown: its preview label when ``preview``, ``(scope)`` appended when given."""
    text = PREVIEW_LABELS.get(verdict, verdict) if preview else verdict
    return f"{text} ({scope})" if scope and verdict != NOT_RUN else text


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
