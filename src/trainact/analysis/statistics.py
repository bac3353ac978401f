"""The statistics of the verdicts: mean and spread over seeds, Student-t intervals, one-sided
t-tests, Holm's adjustment and the minimum detectable difference (no claim, no verdict here).

Over the ``n`` seeds of a per-seed quantity we take the mean ``m``, the 95 % Student-t interval
``m ± t(0.975, n-1) · s / sqrt(n)`` (quantiles of :func:`scipy.stats.t.ppf`), the one-sided t-test
p-value of the wrong direction (the mean beyond a claimed :class:`Region`) and the minimum
detectable difference at 80 % power ``(t(0.975, n-1) + t(0.8, n-1)) · s / sqrt(n)``. With one
seed no spread is known: there is no interval, no p-value and no detectable difference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

#: Coverage of the two-sided Student-t interval of each comparison.
CONFIDENCE = 0.95
#: Power at which the minimum detectable difference is stated (two-sided 5 %, paired t).
DETECTION_POWER = 0.80


def stats(values: Iterable[float]) -> dict[str, Any]:
    """Mean, sample std (ddof = 1, ``nan`` for fewer than two values) and count of the finite values."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(finite.size)
    return {
        "mean": float(finite.mean()) if n else math.nan,
        "std": float(finite.std(ddof=1)) if n > 1 else math.nan,
        "n": n,
    }


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
