"""The trainer's hyperparameters (:class:`TrainSettings`, the config's ``train`` section) and
the paper's learning-rate schedule, eq. (1). Choices the paper leaves open are marked "paper
silent" and repeated in ``config.yaml`` and the report's "Deviations" section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trainact.names import PAPER_LEARNING_RATES, PAPER_LR_BOUNDARIES
from trainact.training.settings import RMSPROP_EPS, RMSPROP_RHO, ConfigSection, schedule_problems


@dataclass(frozen=True)
class TrainSettings(ConfigSection):
    """Every training hyperparameter. Defaults are the paper's setting (Section 2.2)."""

    SECTION = "train"
    # snapshot_epochs only says which states to keep: it changes neither results nor state.
    RESUMABLE_ACROSS = ("device", "eval_batch_size", "epochs", "snapshot_epochs")

    epochs: int = 80  # paper: schedule defined past 60 but no total given; we stop at 80
    batch_size: int = 128  # paper silent
    # lr = learning_rates[i] for boundaries[i-1] < epoch <= boundaries[i] (eq. 1)
    lr_boundaries: tuple[int, ...] = PAPER_LR_BOUNDARIES
    learning_rates: tuple[float, ...] = PAPER_LEARNING_RATES
    rho: float = RMSPROP_RHO  # RMSProp decay, paper
    eps: float = RMSPROP_EPS  # paper silent; Keras' RMSprop default (the paper's rho naming is Keras')
    # The activation layers' parameters (Fourier, LC, GainReLU) learn at lr * this factor, in an
    # optimiser group of their own (a control: does the result depend on how fast they move?).
    # 1.0 = the paper's single group over all parameters.
    activation_lr_scale: float = 1.0
    eval_batch_size: int = 1000  # evaluation only; does not change results
    # Eval-mode loss and accuracy on a fixed subset of this many training images after every
    # epoch (the same images for every run, TRAIN_EVAL_SEED): the measure of memorisation that
    # the running training accuracy is not. 0 = off. Evaluation only; does not change results.
    train_eval_images: int = 10_000
    # Epochs after which the full state is kept as snapshots/epoch<L>.pt, for branches of the
    # schedule (trainact train --branch-from). Does not change results.
    snapshot_epochs: tuple[int, ...] = ()
    seed: int = 0
    device: str | None = None  # trainact.training.device: auto (default, or $TRAINACT_DEVICE) | cuda | cpu

    def __post_init__(self) -> None:
        if self.epochs < 1:
            self.fail("epochs", self.epochs, "must be >= 1")
        if self.batch_size < 1:
            self.fail("batch_size", self.batch_size, "must be >= 1")
        if self.eval_batch_size < 1:
            self.fail("eval_batch_size", self.eval_batch_size, "must be >= 1")
        if self.train_eval_images < 0:
            self.fail("train_eval_images", self.train_eval_images, "must be >= 0")
        if any(not 1 <= e <= self.epochs for e in self.snapshot_epochs):
            self.fail("snapshot_epochs", list(self.snapshot_epochs), f"must lie in 1..epochs = {self.epochs}")
        for key, value, why in schedule_problems(self.lr_boundaries, self.learning_rates):
            self.fail(key, value, why)
        if any(not (lr > 0) for lr in self.learning_rates):
            self.fail("learning_rates", list(self.learning_rates), "must all be > 0")
        if not 0 <= self.rho < 1:
            self.fail("rho", self.rho, "must be in [0, 1)")
        if not self.eps > 0:
            self.fail("eps", self.eps, "must be > 0")
        if not (math.isfinite(self.activation_lr_scale) and self.activation_lr_scale > 0):
            self.fail("activation_lr_scale", self.activation_lr_scale, "must be finite and > 0")

    def learning_rate(self, epoch: int) -> float:
        """Learning rate of 1-based ``epoch`` (the paper's eq. (1))."""
        index = sum(epoch > boundary for boundary in self.lr_boundaries)
        return float(self.learning_rates[index])

    def learning_rates_until(self, epoch: int) -> list[float]:
        """The learning rate of each epoch 1..``epoch``: what a trunk and a branch must share."""
        return [self.learning_rate(e) for e in range(1, epoch + 1)]
