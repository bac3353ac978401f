"""The paper's names for what it trains, written once: network sizes and their filters, the
activations, the Section 5 networks.

Training, the analysis, the figures and the workflow (``workflow/rules/common.smk``, when
Snakemake parses the Snakefile) read these, so this module imports only the standard library.
The labels the tables and figures print are :mod:`trainact.analysis.labels`; the captions are
:mod:`trainact.report.captions`: editing either reruns no training.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Filter numbers of the three convolution stages of each network size (Section 2.2).
PAPER_FILTERS: dict[str, tuple[int, int, int]] = {
    "small": (16, 32, 32),
    "middle": (32, 64, 64),
    "large": (48, 96, 96),
}
#: Network sizes, in the paper's order.
SIZES: tuple[str, ...] = tuple(PAPER_FILTERS)
#: The activations: ReLU, the Fourier series of eq. (2), the linear combination of eq. (7).
ACTIVATIONS: tuple[str, ...] = ("relu", "fourier", "lc")
#: The activations with trainable parameters.
TRAINABLE: tuple[str, ...] = ("fourier", "lc")
#: The four functions the paper's linear combination mixes (eq. (7)).
LC_CANDIDATES: tuple[str, ...] = ("relu", "sigmoid", "tanh", "linear")
#: Section 5: autoencoder pretraining of the middle Fourier-CNN, PSO training of the middle CNN.
AUTOENCODER_MODEL: tuple[str, str] = ("middle", "fourier")
PSO_MODEL: tuple[str, str] = ("middle", "relu")
#: The learning-rate schedule of eq. (1): 1e-3 for epochs 1-20, 1e-4 for 21-40, 1e-5 for 41-60,
#: 1e-6 after 60 (training's default; a run on another schedule gives preview verdicts).
PAPER_LR_BOUNDARIES: tuple[int, ...] = (20, 40, 60)
PAPER_LEARNING_RATES: tuple[float, ...] = (1e-3, 1e-4, 1e-5, 1e-6)
#: Data splits of the histories; Table 2's column order (validation first).
SPLITS: tuple[str, ...] = ("val", "train")


def check_names(kind: str, names: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """``names`` in the paper's order, or ``ValueError`` naming the unknown ones."""
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown {kind} {unknown}; choose from {list(allowed)}")
    return [n for n in allowed if n in set(names)]
