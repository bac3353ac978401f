"""The paper's grid of networks: three sizes, three activations, and their names in its tables.

Its own module, importing nothing, so that both the aggregation (:mod:`trainact.aggregate`) and
the claims check it runs (:mod:`trainact.claims`) can name the networks without importing each
other. :mod:`trainact.aggregate` re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Sequence

SIZES = ("small", "middle", "large")
ACTIVATIONS = ("relu", "fourier", "lc")
TRAINABLE = ("fourier", "lc")
MODEL_NAMES = {"relu": "CNN", "fourier": "Fourier-CNN", "lc": "LC-CNN"}


def model_name(size: str, activation: str) -> str:
    """The paper's row label, e.g. ``"Small Fourier-CNN"``."""
    return f"{size.capitalize()} {MODEL_NAMES[activation]}"


def check_names(kind: str, names: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """``names`` in the paper's order, or ``ValueError`` naming the unknown ones."""
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown {kind} {unknown}; choose from {list(allowed)}")
    return [n for n in allowed if n in set(names)]
