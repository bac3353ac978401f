"""Preview: when a run is too short of the paper's setting for a verdict.

A verdict that rests on fewer than :data:`~trainact.analysis.thresholds.MIN_SEEDS_FOR_VERDICT`
seeds, on a learning-rate schedule shorter than the paper's (fewer than
:data:`~trainact.analysis.thresholds.PAPER_SCHEDULE_EPOCHS` epochs, or a learning-rate drop earlier than
the paper's :data:`~trainact.names.PAPER_LR_BOUNDARIES`), on other learning rates than the
paper's, on fewer training or test images than CIFAR-10's (or on synthetic data), or on another
batch size than the paper preset's is a *preview*: it reads "preview: consistent with the
claim", "preview: inconsistent with the claim" or "preview: inconclusive", never "supported" or
"not supported" (:func:`preview_reasons` says why).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from trainact.analysis.thresholds import (
    MIN_SEEDS_FOR_VERDICT,
    PAPER_CONFIG_BATCH_SIZE,
    PAPER_SCHEDULE_EPOCHS,
    PAPER_TEST_IMAGES,
    PAPER_TRAIN_IMAGES,
)
from trainact.analysis.verdicts import (
    NOT_SUPPORTED,
    PREVIEW_CONSISTENT,
    PREVIEW_INCONCLUSIVE,
    PREVIEW_INCONSISTENT,
    SUPPORTED,
)
from trainact.names import PAPER_LEARNING_RATES, PAPER_LR_BOUNDARIES

#: Classes of CIFAR-10: ``dataset.train_per_class`` images of each make the training set, less
#: ``dataset.validation_per_class`` of each held out.
CLASSES = 10
PREVIEW_RULE = (
    f"A verdict is a preview when it rests on fewer than {MIN_SEEDS_FOR_VERDICT} seeds, on a schedule "
    f"shorter than the paper's (fewer than {PAPER_SCHEDULE_EPOCHS} epochs, or a learning-rate drop before "
    f"epochs {list(PAPER_LR_BOUNDARIES)}), on other learning rates than the paper's, on fewer than "
    f"{PAPER_TRAIN_IMAGES:,} training or {PAPER_TEST_IMAGES:,} test images (or synthetic data), or on "
    f"another batch size than {PAPER_CONFIG_BATCH_SIZE} (the paper is silent; our paper config uses it). A "
    f'preview reads "{PREVIEW_CONSISTENT}", "{PREVIEW_INCONSISTENT}" or "{PREVIEW_INCONCLUSIVE}", never '
    f'"{SUPPORTED}" or "{NOT_SUPPORTED}".'
)


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
    return (
        reasons
        + _train_reasons(settings.get("train") or {})
        + _dataset_reasons(settings.get("dataset") or {})
    )


def _train_reasons(train: Mapping[str, Any]) -> list[str]:
    """The preview reasons of the ``train`` config: schedule, learning rates, batch size."""
    reasons = []
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
    return reasons


def _dataset_reasons(dataset: Mapping[str, Any]) -> list[str]:
    """The preview reasons of the ``dataset`` config: synthetic data, fewer images than CIFAR-10's."""
    reasons = []
    synthetic, per_class = dataset.get("synthetic"), dataset.get("train_per_class")
    # A validation split is held out of the training images: the networks train on the rest.
    held_out = CLASSES * int(dataset.get("validation_per_class") or 0)
    held_out_note = f", {held_out:,} held out for validation" if held_out else ""
    if synthetic:
        images = CLASSES * int(synthetic["train_per_class"]) - held_out
        reasons.append(
            f"synthetic data, {images:,} training images{held_out_note} "
            f"(paper: CIFAR-10, {PAPER_TRAIN_IMAGES:,})"
        )
        if (
            synthetic.get("test_per_class") is not None
            and CLASSES * int(synthetic["test_per_class"]) < PAPER_TEST_IMAGES
        ):
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
