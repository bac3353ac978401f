"""What each of the paper's claims says, in the paper's words: its number, statement, short form
and source. :mod:`trainact.analysis.claims` tests them; the report prints these texts.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainact.analysis.thresholds import NON_INFERIORITY_MARGIN_PP


@dataclass(frozen=True)
class ClaimText:
    """What a claim says: its number, statement (quoting the paper), short form and source."""

    number: int
    claim: str
    short: str
    source: str


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
        'Autoencoder pretraining improves the middle Fourier-CNN: its validation accuracy "starts from a '
        'higher value", it "converge[s] faster" and reaches a higher accuracy.',
        "Autoencoder pretraining improves the middle Fourier-CNN",
        "Sections 5.1 and 6",
    ),
    4: ClaimText(
        4,
        'PSO training reaches a lower accuracy than BP (RMSProp), "about half" of it (middle CNN).',
        "PSO reaches about half of RMSProp's accuracy (middle CNN)",
        "Sections 5.2 and 6",
    ),
    5: ClaimText(
        5,
        'The improvement of the trainable activations over the ReLU CNN "is more significant on smaller '
        'networks" (validation accuracy).',
        "The improvement over the ReLU CNN is larger on smaller networks",
        "Section 3",
    ),
    6: ClaimText(
        6,
        'At middle and large size the trainable networks reach "higher accuracy on validation data but lower '
        'accuracy on training data" than the ReLU CNN ("better generalization ability"): a smaller gap '
        "between training and validation accuracy.",
        "Trainable activations generalise better at middle and large size (smaller train − test gap)",
        "Section 4.1",
    ),
    7: ClaimText(
        7,
        'Trainable activations "will not be worse than simple non-trainable activation functions if it is '
        f"properly trained\": validation accuracy not below the ReLU CNN's by more than "
        f"{NON_INFERIORITY_MARGIN_PP:g} pp at any size.",
        f"Trainable activations are not worse than ReLU (margin {NON_INFERIORITY_MARGIN_PP:g} pp)",
        "Sections 2.2 and 6",
    ),
}
