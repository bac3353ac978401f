"""The files of one run and their columns, written once: what a training, fine-tuning,
autoencoder-pretraining or PSO run writes into its folder. The training commands
(trainact.training) write them, the aggregation and the figures read them; the run's folder
is :mod:`trainact.layout`'s.

Its own module, apart from :mod:`trainact.layout`, because a module is a unit of reruns
(trainact.sourcegraph): an edit of the results layout's tables or figures must rerun no training
job, while an edit here changes what every training job writes. Standard library only.
"""

from __future__ import annotations

#: A training or fine-tuning run (``trainact train``, ``trainact ae-finetune``); also PSO's history.
HISTORY_FILE = "history.csv"
#: Per epoch and activation layer (trainact.nn.calibration.layer_health); epoch 0 is the start.
HEALTH_FILE = "activation_health.csv"
#: The final (or last good) weights of a training run.
MODEL_FILE = "model.pt"
#: The learned parameters of a training run's activation layers.
ACTIVATIONS_FILE = "activations.json"
#: How a training, fine-tuning or PSO run ran (device, determinism, kernels) and its results.
SUMMARY_FILE = "summary.json"
#: A training or PSO run's checkpoint (rewritten about once a minute and after the last epoch).
CHECKPOINT_FILE = "checkpoint.pt"
#: ``<run>/snapshots/epoch<L>.pt``: the state after epoch L, where a branch of the schedule starts.
SNAPSHOT_DIR = "snapshots"
#: The fine-tuning run's folder inside an autoencoder run's folder.
FINETUNE_DIR = "finetune"
#: Autoencoder pretraining: one row per stage-epoch, the pretrained classifier, the checkpoint.
PRETRAIN_HISTORY_FILE = "pretrain.csv"
PRETRAINED_FILE = "pretrained.pt"
PRETRAIN_CHECKPOINT_FILE = "pretrain_checkpoint.pt"
#: PSO: the network at the swarm's best position.
PSO_BEST_FILE = "best.pt"

#: Columns of a training run's ``history.csv``. val_* is the test split (the paper's
#: "validation"); heldout_* the validation split held out from the training images
#: (dataset.validation_per_class), empty without one.
TRAIN_HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "train_eval_loss",
    "train_eval_acc",
    "heldout_loss",
    "heldout_acc",
    "seconds",
    "images_per_s",
    "status",
)
#: Columns of ``activation_health.csv``: one row per epoch and activation layer.
HEALTH_COLUMNS: tuple[str, ...] = (
    "epoch",
    "layer",
    "kind",
    "input_std",
    "input_rms",
    "outside_fit_share",
    "nonlinear_share",
    "relu_nonlinear_share",
    "param_distance",
    "param_relative_distance",
)
#: Columns of ``pretrain.csv``: stage (0-based), epoch (1-based within the stage), the epoch's mean
#: reconstruction MSE, seconds.
PRETRAIN_HISTORY_COLUMNS: tuple[str, ...] = ("stage", "epoch", "loss", "seconds")
#: Columns of a PSO run's ``history.csv``: one row per generation (0: the initial swarm).
PSO_HISTORY_COLUMNS: tuple[str, ...] = (
    "generation",
    "best_fitness",
    "best_loss",
    "train_acc",
    "test_acc",
    "seconds",
)


def snapshot_file(epoch: int) -> str:
    """Where a training run keeps its state after ``epoch``, relative to its folder."""
    return f"{SNAPSHOT_DIR}/epoch{epoch}.pt"
