"""What the tables, figures and verdicts call the networks and the data splits.

Only the analysis and the report read these words, so editing them reruns no training.
"""

from __future__ import annotations

#: The paper's name of a network with each activation (Table 1's row labels).
MODEL_NAMES: dict[str, str] = {"relu": "CNN", "fourier": "Fourier-CNN", "lc": "LC-CNN"}
#: The words for the data splits of :data:`trainact.names.SPLITS`.
SPLIT_WORDS: dict[str, str] = {"val": "validation", "train": "training"}


def model_name(size: str, activation: str) -> str:
    """The paper's row label, e.g. ``"Small Fourier-CNN"``."""
    return f"{size.capitalize()} {MODEL_NAMES[activation]}"


def model_name_of(activation: str) -> str:
    """The model's name without its size, the standard CNN as "ReLU CNN" (the schedule axis'
    figure and the report's table of it)."""
    return "ReLU CNN" if activation == "relu" else MODEL_NAMES[activation]
