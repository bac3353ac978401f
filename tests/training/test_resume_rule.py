"""The one resume rule (trainact.training.checkpoints.resumable_checkpoint), and that each of its
three callers (training, autoencoder pretraining, PSO) refuses a checkpoint of other settings."""

from __future__ import annotations

import logging

import numpy as np
import torch

from trainact.data.cifar import PreparedData
from trainact.nn.models import build_model
from trainact.training.autoencoder import AutoencoderSettings, pretrain
from trainact.training.checkpoints import resumable_checkpoint, save_checkpoint
from trainact.training.pso import PSOSettings, train_pso
from trainact.training.random_state import seed_everything
from trainact.training.train import fit
from trainact.training.train_settings import TrainSettings

MODEL = {"filters": {"small": [4, 4, 4], "middle": [4, 4, 4]}, "hidden": 8, "impl": "eager"}
STALE = "was written with other settings"


def tiny_data(n_train: int = 48, n_test: int = 16) -> PreparedData:
    rng = np.random.default_rng(0)

    def split(n):
        labels = rng.integers(0, 10, n)
        images = (labels[:, None, None, None] * 25 + rng.integers(0, 30, (n, 3, 32, 32))).clip(0, 255)
        return images.astype(np.uint8), labels.astype(np.int64)

    (train_images, train_labels), (test_images, test_labels) = split(n_train), split(n_test)
    return PreparedData(
        train_images=train_images, train_labels=train_labels, test_images=test_images,
        test_labels=test_labels, class_names=[f"class{i}" for i in range(10)], source_md5="0" * 32,
    )  # fmt: skip


def test_the_rule(tmp_path, caplog):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"fingerprint": {"a": 1}, "history": [1, 2]})
    assert resumable_checkpoint(path, {"a": 1}, progress="history", most=2)["history"] == [1, 2]
    assert resumable_checkpoint(path, {"a": 1}, progress="history", most=2, resume=False) is None
    with caplog.at_level(logging.WARNING):
        assert resumable_checkpoint(path, {"a": 2}, progress="history", most=2, starting_over="anew") is None
        assert resumable_checkpoint(path, {"a": 1}, progress="history", most=1) is None  # past the end
    assert caplog.text.count(f"{path} {STALE}; anew") == 1
    assert resumable_checkpoint(tmp_path / "none.pt", {"a": 1}, progress="history", most=2) is None
    substituted = resumable_checkpoint(
        path, {"a": 1}, progress="history", most=2, substitute=lambda c: {**c, "history": [1]}
    )
    assert substituted["history"] == [1]
    assert resumable_checkpoint(path, {"a": 1}, progress="history", most=2, substitute=lambda c: None) is None


def test_training_refuses_a_checkpoint_of_other_settings(tmp_path, caplog):
    def run(**changes):
        base = dict(epochs=2, batch_size=16, train_eval_images=0, seed=0, device="cpu")
        settings = TrainSettings(**{**base, **changes})
        seed_everything(0)
        model = build_model("small", "relu", MODEL)
        return fit(model, tiny_data(), settings, tmp_path, progress=False, stop_after_epoch=1)

    run()
    with caplog.at_level(logging.INFO):
        history = run(batch_size=8)
    assert f"{STALE}; training from scratch" in caplog.text and "resuming" not in caplog.text
    assert [r["epoch"] for r in history] == [1]


def test_pretraining_refuses_a_checkpoint_of_other_settings(tmp_path, caplog):
    def run(**changes):
        settings = AutoencoderSettings(
            activation="relu", epochs_per_stage=1, batch_size=16, seed=0, device="cpu", **changes
        )
        return pretrain(tiny_data(), settings, MODEL, tmp_path, progress=False, stop_after=(0, 1))

    run()
    with caplog.at_level(logging.INFO):
        _, rows = run(learning_rate=1e-2)
    assert f"{STALE}; pretraining from scratch" in caplog.text and "resuming" not in caplog.text
    assert [(r["stage"], r["epoch"]) for r in rows] == [(0, 1)]


def test_pso_refuses_a_checkpoint_of_other_settings(tmp_path, caplog):
    def run(**changes):
        settings = PSOSettings(
            particles=2, generations=2, fitness_batch_size=16, eval_train_size=16, eval_batch_size=16,
            seed=0, device="cpu", **changes,
        )  # fmt: skip
        return train_pso(tiny_data(), settings, MODEL, tmp_path, progress=False, stop_after_generation=1)

    run()
    with caplog.at_level(logging.INFO):
        history = run(inertia=0.3)
    assert f"{STALE}; starting a new swarm" in caplog.text and "resuming" not in caplog.text
    assert [r["generation"] for r in history] == [0, 1]
    assert torch.isfinite(torch.tensor([r["best_loss"] for r in history])).all()
