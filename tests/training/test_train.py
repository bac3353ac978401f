"""The trainer: schedule, history, bit-for-bit resumption, divergence handling, CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from trainact.data.cifar import PreparedData
from trainact.nn.models import build_model
from trainact.run_files import HEALTH_COLUMNS, HEALTH_FILE, TRAIN_HISTORY_COLUMNS
from trainact.sourcegraph import code_digest
from trainact.training.divergence import (
    DIVERGED_EXIT_CODE,
    DIVERGENCE_ENV,
    default_divergence_policy,
    diverged_message,
    diverged_record,
    divergence_exit_code,
)
from trainact.training.random_state import seed_everything
from trainact.training.train import TrainingDiverged, fit
from trainact.training.train_settings import TrainSettings

TINY_MODEL = {"filters": {"small": [4, 4, 4]}, "hidden": 8, "impl": "eager"}


def tiny_data(n_train: int = 96, n_test: int = 40, seed: int = 0) -> PreparedData:
    """Learnable random data: each class has its own mean colour."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, n)
        base = (labels[:, None] * 25).astype(np.int64)
        images = base[:, :, None, None] + rng.integers(0, 30, (n, 3, 32, 32))
        return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)

    train_images, train_labels = split(n_train)
    test_images, test_labels = split(n_test)
    return PreparedData(
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
        class_names=[f"class{i}" for i in range(10)],
        source_md5="0" * 32,
    )


def read_history(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_paper_schedule():
    settings = TrainSettings()
    assert [settings.learning_rate(e) for e in (1, 20, 21, 40, 41, 60, 61, 80)] == [
        1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6,
    ]  # fmt: skip


@pytest.mark.parametrize(
    "params, needle",
    [
        ({"epochs": 0}, "train.epochs = 0"),
        ({"learning_rates": [1e-3]}, "train.learning_rates"),
        ({"lr_boundaries": [40, 20], "learning_rates": [1, 2, 3]}, "train.lr_boundaries"),
        ({"rho": 1.5}, "train.rho = 1.5"),
        ({"momentum": 0.9}, "momentum"),
    ],
)
def test_bad_settings_name_the_key_and_value(params, needle):
    with pytest.raises(ValueError, match=needle.replace(".", r"\.").replace("[", r"\[")):
        TrainSettings.from_params(params)


def train_tiny(out_dir, activation="fourier", **kwargs):
    settings = TrainSettings(
        epochs=4, batch_size=32, lr_boundaries=(2,), learning_rates=(1e-3, 1e-4), device="cpu"
    )
    seed_everything(settings.seed)
    model = build_model("small", activation, TINY_MODEL)
    return model, fit(model, tiny_data(), settings, out_dir, progress=False, **kwargs)


def test_history_has_a_row_per_epoch_and_the_schedule(tmp_path):
    model, history = train_tiny(tmp_path)
    rows = read_history(tmp_path / "history.csv")
    assert list(rows[0]) == list(TRAIN_HISTORY_COLUMNS)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert [float(r["lr"]) for r in rows] == [1e-3, 1e-3, 1e-4, 1e-4]
    assert all(r["status"] == "ok" for r in rows)
    assert all(0 <= float(r["val_acc"]) <= 1 for r in rows)
    assert (tmp_path / "model.pt").exists()
    layers = json.loads((tmp_path / "activations.json").read_text())["layers"]
    assert len(layers) == 4 and {layer["kind"] for layer in layers} == {"fourier"}


def test_the_optimiser_steps_with_the_scheduled_learning_rate(tmp_path, monkeypatch):
    """The rate RMSProp itself uses at every step, not the one history.csv reports: 96 images in
    batches of 32 = 3 steps per epoch; epochs 1-2 at 1e-3, 3-4 at 1e-4 (boundary 2). Also rho
    (torch's alpha) and eps, the paper's RMSProp settings."""
    seen = []
    real = torch.optim.RMSprop.step

    def spy(self, *args, **kwargs):
        seen.extend((g["lr"], g["alpha"], g["eps"]) for g in self.param_groups)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.RMSprop, "step", spy)
    train_tiny(tmp_path, activation="relu")
    assert seen == [(1e-3, 0.95, 1e-7)] * 6 + [(1e-4, 0.95, 1e-7)] * 6


def test_activation_lr_scale_one_is_the_papers_single_group(tmp_path, monkeypatch):
    """The default builds RMSprop over model.parameters() in one group, as before the option:
    the same history and weights bit for bit as that optimiser, written out here."""
    from trainact.training import train

    groups = []
    real = train.parameter_groups
    monkeypatch.setattr(train, "parameter_groups", lambda *a: groups.append(real(*a)) or groups[-1])
    model, history = train_tiny(tmp_path / "default")
    assert len(groups[0]) == 1 and train.LR_SCALE_KEY not in groups[0][0]  # the schedule's rate
    assert [id(p) for p in groups[0][0]["params"]] == [id(p) for p in model.parameters()]

    monkeypatch.setattr(train, "parameter_groups", lambda model, scale: model.parameters())
    _, plain = train_tiny(tmp_path / "plain")
    assert [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history] == [
        {k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in plain
    ]
    a, b = torch.load(tmp_path / "default" / "model.pt"), torch.load(tmp_path / "plain" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("activation, activation_group", [("fourier", True), ("lc", True), ("relu", False)])
def test_activation_parameters_step_with_the_scaled_learning_rate(
    tmp_path, monkeypatch, activation, activation_group
):
    """train.activation_lr_scale = 0.1: at every step the activation layers' parameters get lr * 0.1,
    the network's lr (96 images, batches of 32: 3 steps per epoch; 1e-3 in epochs 1-2, then 1e-4).
    A ReLU network has no activation parameters: one group, the schedule's rate."""
    from trainact.nn.calibration import activation_layers

    seen, members = [], []
    real = torch.optim.RMSprop.step

    def spy(self, *args, **kwargs):
        seen.append(tuple(g["lr"] for g in self.param_groups))
        members.append([{id(p) for p in g["params"]} for g in self.param_groups])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.RMSprop, "step", spy)
    settings = TrainSettings(
        epochs=4, batch_size=32, lr_boundaries=(2,), learning_rates=(1e-3, 1e-4), device="cpu",
        activation_lr_scale=0.1,
    )  # fmt: skip
    seed_everything(settings.seed)
    model = build_model("small", activation, TINY_MODEL)
    fit(model, tiny_data(), settings, tmp_path, progress=False)
    if not activation_group:
        assert seen == [(1e-3,)] * 6 + [(1e-4,)] * 6
        return
    assert seen == [(1e-3, 1e-3 * 0.1)] * 6 + [(1e-4, 1e-4 * 0.1)] * 6
    activation_ids = {id(p) for _, m in activation_layers(model) for p in m.parameters()}
    assert members[0] == [{id(p) for p in model.parameters()} - activation_ids, activation_ids]
    assert len(activation_ids) == 4 * len(list(activation_layers(model)[0][1].parameters()))


@pytest.mark.parametrize("scale", [0.0, -1.0, float("inf"), float("nan")])
def test_activation_lr_scale_must_be_positive_and_finite(scale):
    with pytest.raises(ValueError, match="train.activation_lr_scale"):
        TrainSettings(activation_lr_scale=scale)


def test_interrupted_run_resumes_to_the_same_history_and_weights(tmp_path):
    _, full = train_tiny(tmp_path / "full")
    train_tiny(tmp_path / "split", stop_after_epoch=2)
    assert len(read_history(tmp_path / "split" / "history.csv")) == 2
    assert not (tmp_path / "split" / "model.pt").exists()
    _, resumed = train_tiny(tmp_path / "split")  # a fresh process would do the same

    def losses(rows):
        return [(r["train_loss"], r["train_acc"], r["val_loss"], r["val_acc"]) for r in rows]

    assert losses(resumed) == losses(full)
    a = torch.load(tmp_path / "full" / "model.pt")
    b = torch.load(tmp_path / "split" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the activation health continues from the checkpoint, against the same start
    health = (tmp_path / "full" / HEALTH_FILE).read_text()
    assert (tmp_path / "split" / HEALTH_FILE).read_text() == health


def test_activation_health_has_a_row_per_epoch_and_layer_from_the_start(tmp_path):
    """Epoch 0 is the start (no movement); the Fourier parameters then move; the calibration
    of the start reaches activations.json."""
    from trainact.nn.calibration import calibrate

    settings = TrainSettings(epochs=2, batch_size=32, device="cpu")
    seed_everything(0)
    model = build_model("small", "fourier", {**TINY_MODEL, "fourier": {"init": "calibrated"}})
    data = tiny_data()
    records = calibrate(model, data.train_images, settings.seed)
    fit(model, data, settings, tmp_path, progress=False)
    rows = read_history(tmp_path / HEALTH_FILE)
    assert list(rows[0]) == list(HEALTH_COLUMNS)
    layers = ["stages.0.1", "stages.1.1", "stages.2.1", "head.2"]
    assert [(int(r["epoch"]), r["layer"]) for r in rows] == [
        (e, layer) for e in (0, 1, 2) for layer in layers
    ]
    assert all(float(r["param_distance"]) == 0 for r in rows[:4])
    assert all(float(r["param_relative_distance"]) > 0 for r in rows[4:])
    assert all(0 <= float(r["outside_fit_share"]) <= 1 and r["kind"] == "fourier" for r in rows)
    saved = json.loads((tmp_path / "activations.json").read_text())
    assert saved["calibration"] == json.loads(json.dumps(records))
    assert [layer["fit_interval"] for layer in saved["layers"]] == [r["fit_interval"] for r in records]
    assert all(layer["params"]["scale"][0] != 1.0 for layer in saved["layers"])  # the calibrated scale


def test_relu_networks_have_health_rows_without_parameters(tmp_path):
    train_tiny(tmp_path, activation="relu")
    rows = read_history(tmp_path / HEALTH_FILE)
    assert len(rows) == 5 * 4 and {r["kind"] for r in rows} == {"relu"}
    assert all(r["param_distance"] == "" and r["outside_fit_share"] == "" for r in rows)
    assert all(r["nonlinear_share"] == r["relu_nonlinear_share"] for r in rows)  # a ReLU layer is ReLU


def test_checkpoint_with_other_settings_is_not_resumed(tmp_path):
    train_tiny(tmp_path, stop_after_epoch=2)
    settings = TrainSettings(epochs=1, batch_size=16, device="cpu")
    model = build_model("small", "relu", TINY_MODEL)
    history = fit(model, tiny_data(), settings, tmp_path, progress=False)
    assert [r["epoch"] for r in history] == [1]


FINGERPRINT_BASE = dict(
    epochs=2, batch_size=32, lr_boundaries=(1,), learning_rates=(1e-3, 1e-4), device="cpu"
)


@pytest.fixture(scope="module")
def one_epoch_checkpoint(tmp_path_factory):
    """checkpoint.pt of a tiny ReLU run stopped after epoch 1 of 2 (3 steps of 32 images)."""
    out = tmp_path_factory.mktemp("one-epoch")
    settings = TrainSettings(**FINGERPRINT_BASE)
    seed_everything(settings.seed)
    fit(
        build_model("small", "relu", TINY_MODEL),
        tiny_data(),
        settings,
        out,
        progress=False,
        stop_after_epoch=1,
    )
    return out / "checkpoint.pt"


@pytest.mark.parametrize(
    "change, model_change, resumed",
    [
        # one setting at a time: each changes the run, so the checkpoint is discarded
        ({"learning_rates": (1e-3, 1e-5)}, {}, False),
        ({"lr_boundaries": (2,)}, {}, False),
        ({"rho": 0.9}, {}, False),
        ({"eps": 1e-6}, {}, False),
        ({"batch_size": 48}, {}, False),
        ({"seed": 1}, {}, False),
        ({"activation_lr_scale": 0.1}, {}, False),
        # the model's structure alone, with the same settings
        ({}, {"hidden": 9}, False),
        ({}, {"relu_gain": True}, False),
        # RESUMABLE_ACROSS: run length, evaluation chunking, device; and nothing changed
        ({"epochs": 3}, {}, True),
        ({"eval_batch_size": 7}, {}, True),
        ({"device": None}, {}, True),
        ({}, {}, True),
    ],
)
def test_checkpoint_fingerprint_one_change_at_a_time(
    tmp_path, monkeypatch, one_epoch_checkpoint, change, model_change, resumed
):
    """Counted in optimiser steps: a resumed run trains only the epochs after the checkpoint's one;
    a discarded checkpoint means training from epoch 1."""
    import shutil

    shutil.copy(one_epoch_checkpoint, tmp_path / "checkpoint.pt")
    steps = []
    real = torch.optim.RMSprop.step
    monkeypatch.setattr(
        torch.optim.RMSprop, "step", lambda self, *a, **k: steps.append(1) or real(self, *a, **k)
    )
    settings = TrainSettings(**{**FINGERPRINT_BASE, **change})
    seed_everything(settings.seed)
    model = build_model("small", "relu", {**TINY_MODEL, **model_change})
    history = fit(model, tiny_data(), settings, tmp_path, progress=False)
    per_epoch = 96 // settings.batch_size
    trained = settings.epochs - 1 if resumed else settings.epochs
    assert len(steps) == trained * per_epoch
    assert [r["epoch"] for r in history] == list(range(1, settings.epochs + 1))
    first = torch.load(one_epoch_checkpoint, weights_only=False)["history"][0]
    assert (history[0] == first) is resumed  # the checkpoint's own row (its timing too), or a new one


def test_non_finite_loss_stops_with_a_marked_history(tmp_path):
    settings = TrainSettings(epochs=3, batch_size=32, learning_rates=(1e30,) * 4, device="cpu")
    seed_everything(0)
    model = build_model("small", "relu", TINY_MODEL)
    with pytest.raises(TrainingDiverged, match="non-finite"):
        fit(model, tiny_data(), settings, tmp_path, progress=False)
    rows = read_history(tmp_path / "history.csv")
    assert rows[-1]["status"] == "diverged"
    assert rows[-1]["train_loss"] == "" and rows[-1]["val_acc"] == ""
    assert all("nan" not in value.lower() for row in rows for value in row.values())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged" and (tmp_path / "model.pt").exists()
    assert summary["diverged"] == {"epoch": 1, "lr": 1e30, "weights_after_epoch": 0}


def save_tiny_data(path) -> None:
    """:func:`tiny_data` as a prepared .npz, for the CLI."""
    data = tiny_data()
    np.savez(
        path,
        train_images=data.train_images,
        train_labels=data.train_labels,
        test_images=data.test_images,
        test_labels=data.test_labels,
        class_names=np.array(data.class_names),
        source_md5=np.array(data.source_md5),
    )


def test_cli_trains_and_rejects_bad_params(tmp_path):
    save_tiny_data(tmp_path / "data.npz")
    params = {"model": TINY_MODEL, "train": {"epochs": 1, "batch_size": 32}}
    base = [sys.executable, "-m", "trainact", "train", "--data", str(tmp_path / "data.npz")]
    base += ["--size", "small", "--activation", "lc", "--out-dir", str(tmp_path / "run"), "--no-progress"]
    ok = subprocess.run(base + ["--params", json.dumps(params)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert len(read_history(tmp_path / "run" / "history.csv")) == 1

    assert json.loads((tmp_path / "run" / "summary.json").read_text())["diverged"] is None

    bad = {"model": TINY_MODEL, "train": {"batch_size": -4}}
    err = subprocess.run(base + ["--params", json.dumps(bad)], capture_output=True, text=True)
    assert err.returncode == 2
    assert "train.batch_size = -4" in err.stderr


@pytest.mark.slow
def test_cli_fails_by_default_after_a_divergence_and_keeps_the_runs_files(tmp_path):
    """Run by hand (no $TRAINACT_ON_DIVERGENCE), a divergence is an error (exit 3); the run's files
    are complete and the message names the folder, the epoch, the lr and the weights."""
    save_tiny_data(tmp_path / "data.npz")
    params = {"model": TINY_MODEL, "train": {"epochs": 2, "batch_size": 32, "learning_rates": [1e30] * 4}}
    command = [
        sys.executable,
        "-m",
        "trainact",
        "train",
        "--data",
        str(tmp_path / "data.npz"),
        "--size",
        "small",
    ]
    command += ["--activation", "relu", "--out-dir", str(tmp_path / "run"), "--no-progress"]
    env = {k: v for k, v in os.environ.items() if k != DIVERGENCE_ENV}
    done = subprocess.run(command + ["--params", json.dumps(params)], capture_output=True, text=True, env=env)
    assert done.returncode == DIVERGED_EXIT_CODE, done.stderr
    assert (
        f"{tmp_path / 'run'}: the training loss became non-finite in epoch 1 (lr 1e+30); stopped; "
        "model.pt holds the weights of the start (summary.json: diverged)"
    ) in done.stderr
    assert {p.name for p in (tmp_path / "run").iterdir()} >= {
        "history.csv", "model.pt", "activations.json", "summary.json", "activation_health.csv"
    }  # fmt: skip


def test_the_divergence_policy_decides_only_the_exit_status(monkeypatch):
    """$TRAINACT_ON_DIVERGENCE is --on-divergence's default (the workflow sets it); ``result``
    exits 0 after a divergence, ``fail`` 3; a run that did not diverge exits 0 under both."""
    monkeypatch.delenv(DIVERGENCE_ENV, raising=False)
    assert default_divergence_policy() == "fail"
    monkeypatch.setenv(DIVERGENCE_ENV, "result")
    assert default_divergence_policy() == "result"
    assert [divergence_exit_code(p, diverged=True) for p in ("result", "fail")] == [0, DIVERGED_EXIT_CODE]
    assert [divergence_exit_code(p, diverged=False) for p in ("result", "fail")] == [0, 0]
    with pytest.raises(ValueError, match="divergence policy 'maybe'"):
        divergence_exit_code("maybe", diverged=True)


def test_a_trunk_that_diverged_before_its_snapshots_fails_under_either_policy(tmp_path, monkeypatch, caplog):
    """A schedule-axis trunk's branches start from its snapshots; one that diverged before them
    leaves nothing to branch from, so its job fails even when divergence is a result."""
    from trainact.cli import main

    save_tiny_data(tmp_path / "data.npz")
    monkeypatch.setenv(DIVERGENCE_ENV, "result")
    train = {"epochs": 2, "batch_size": 32, "learning_rates": [1e30] * 4, "snapshot_epochs": [1, 2]}
    argv = ["train", "--data", str(tmp_path / "data.npz"), "--size", "small", "--activation", "relu"]
    argv += ["--out-dir", str(tmp_path / "trunk"), "--no-progress"]
    argv += ["--params", json.dumps({"model": TINY_MODEL, "train": train})]
    assert main(argv) == DIVERGED_EXIT_CODE
    snapshots = ", ".join(str(tmp_path / "trunk" / "snapshots" / f"epoch{n}.pt") for n in (1, 2))
    assert f"diverged before the schedule axis's snapshot(s) {snapshots}: no branch can start there" in (
        caplog.messages
    )


def test_the_diverged_record_names_the_epoch_its_lr_and_the_weights_kept():
    ok = {"status": "ok", "lr": 1e-3}
    history = [{"epoch": 1, **ok}, {"epoch": 2, **ok}, {"epoch": 3, "lr": 10.0, "status": "diverged"}]
    assert diverged_record(history) == {"epoch": 3, "lr": 10.0, "weights_after_epoch": 2}
    assert diverged_record(history[:2]) is None and diverged_record([]) is None
    assert diverged_record(history[2:]) == {"epoch": 3, "lr": 10.0, "weights_after_epoch": 0}
    assert diverged_message("results/x/seed0", diverged_record(history)) == (
        "results/x/seed0: the training loss became non-finite in epoch 3 (lr 10); stopped; "
        "model.pt holds the weights after epoch 2 (summary.json: diverged)"
    )


# ------------------------------------------------------------------ crashes, checkpoints


def train_schedule(out_dir, epochs, learning_rates, boundaries, **kwargs):
    settings = TrainSettings(
        epochs=epochs, batch_size=32, lr_boundaries=boundaries, learning_rates=learning_rates, device="cpu"
    )
    seed_everything(settings.seed)
    model = build_model("small", "relu", TINY_MODEL)
    return fit(model, tiny_data(), settings, out_dir, progress=False, **kwargs)


@pytest.mark.parametrize("interval", ["0", "3600"], ids=["checkpoint-every-epoch", "no-checkpoint-yet"])
def test_divergence_after_the_first_epoch_keeps_the_last_good_weights(tmp_path, monkeypatch, interval):
    """Epochs 1-2 at 1e-3, then 1e30: the loss goes non-finite in epoch 3. model.pt and
    summary.json are written with the weights after epoch 2, whether or not a checkpoint exists
    (the old code crashed in torch.load when one did, and saved NaN weights when none did)."""
    monkeypatch.setenv("TRAINACT_CHECKPOINT_INTERVAL", interval)
    with pytest.raises(TrainingDiverged) as diverged_exc:
        train_schedule(tmp_path / "diverged", 4, (1e-3, 1e30), (2,))
    assert str(diverged_exc.value) == (
        f"{tmp_path / 'diverged'}: the training loss became non-finite in epoch 3 (lr 1e+30); "
        "stopped; model.pt holds the weights after epoch 2 (summary.json: diverged)"
    )
    rows = read_history(tmp_path / "diverged" / "history.csv")
    assert [r["status"] for r in rows] == ["ok", "ok", "diverged"]
    summary = json.loads((tmp_path / "diverged" / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["epochs"] == 2
    assert summary["diverged"] == {"epoch": 3, "lr": 1e30, "weights_after_epoch": 2}
    train_schedule(tmp_path / "good", 2, (1e-3, 1e30), (2,))
    diverged = torch.load(tmp_path / "diverged" / "model.pt")
    good = torch.load(tmp_path / "good" / "model.pt")
    assert all(torch.equal(diverged[k], good[k]) for k in good)
    assert all(torch.isfinite(v).all() for v in diverged.values())


def test_a_checkpoint_from_other_code_or_input_data_is_not_resumed(tmp_path, monkeypatch, caplog):
    """The one stale-checkpoint rule (trainact.training.checkpoints.run_identity): same settings but other
    code, model config or input bytes start the run over; the same identity resumes."""
    import shutil

    from trainact.training import checkpoints

    data_file = tmp_path / "cifar10.npz"
    data_file.write_bytes(b"the prepared data")
    model_cfg = {"fourier": {"init": "relu_fit"}}
    written_under = checkpoints.run_identity("train", model_cfg, data_file)
    settings = TrainSettings(**FINGERPRINT_BASE)
    first = tmp_path / "first"
    seed_everything(settings.seed)
    fit(build_model("small", "relu", TINY_MODEL), tiny_data(), settings, first, progress=False,
        stop_after_epoch=1, identity=written_under)  # fmt: skip

    def resumes(identity) -> bool:
        out = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        out.mkdir()
        shutil.copy(first / "checkpoint.pt", out / "checkpoint.pt")
        caplog.clear()
        with caplog.at_level("INFO", logger="trainact.training.train"):
            seed_everything(settings.seed)
            fit(
                build_model("small", "relu", TINY_MODEL),
                tiny_data(),
                settings,
                out,
                progress=False,
                identity=identity,
            )
        return "resuming" in caplog.text

    assert resumes(checkpoints.run_identity("train", model_cfg, data_file))
    assert not resumes(None)
    # a model setting the network's structure does not show (its activations' start)
    assert not resumes(checkpoints.run_identity("train", {"fourier": {"init": "calibrated"}}, data_file))
    data_file.write_bytes(b"other prepared data")
    assert not resumes(checkpoints.run_identity("train", model_cfg, data_file))
    data_file.write_bytes(b"the prepared data")
    monkeypatch.setattr(checkpoints, "code_digest", lambda family: "edited code")
    assert not resumes(checkpoints.run_identity("train", model_cfg, data_file))
    assert written_under["code"] == code_digest("train")
    assert set(written_under) == {"code", "model config", "input cifar10.npz"}


def test_a_damaged_checkpoint_is_set_aside_and_the_run_starts_over(tmp_path, caplog):
    full = train_schedule(tmp_path / "full", 3, (1e-3, 1e-4), (2,))
    run = tmp_path / "run"
    train_schedule(run, 3, (1e-3, 1e-4), (2,), stop_after_epoch=2)
    checkpoint = run / "checkpoint.pt"
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])  # what a kill during a non-atomic copy leaves
    with caplog.at_level("WARNING"):
        history = train_schedule(run, 3, (1e-3, 1e-4), (2,))
    aside = list(run.glob("checkpoint.pt.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == data[: len(data) // 2]
    assert str(checkpoint) in caplog.text and str(aside[0]) in caplog.text
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in full]  # from scratch
    assert len(read_history(run / "history.csv")) == 3


def test_a_checkpoint_written_on_a_gpu_resumes_on_the_cpu(tmp_path, monkeypatch):
    """Simulate a checkpoint saved on a GPU: every storage tagged 'cuda:0', as torch.save tags
    GPU tensors. Loading it as saved fails on this machine; the trainer loads it to the CPU and
    resumes to the same history and weights as an uninterrupted run."""
    import torch.serialization

    full = train_schedule(tmp_path / "full", 3, (1e-3, 1e-4), (2,))
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        train_schedule(run, 3, (1e-3, 1e-4), (2,), stop_after_epoch=1)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(run / "checkpoint.pt", weights_only=False)
    resumed = train_schedule(run, 3, (1e-3, 1e-4), (2,))
    assert [r["val_loss"] for r in resumed] == [r["val_loss"] for r in full]
    a, b = torch.load(tmp_path / "full" / "model.pt"), torch.load(run / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoints_are_written_by_time_and_after_the_last_epoch(tmp_path, monkeypatch):
    """With an hour between checkpoints, a 3-epoch run writes one, after epoch 3; history.csv is
    still rewritten after every epoch."""
    from trainact.training import checkpoints

    saved = []
    real = checkpoints.save_checkpoint

    def spy(path, state):
        saved.append(len(state["history"]))
        real(path, state)

    monkeypatch.setenv("TRAINACT_CHECKPOINT_INTERVAL", "3600")
    monkeypatch.setattr("trainact.training.checkpoints.save_checkpoint", spy)
    train_schedule(tmp_path, 3, (1e-3, 1e-4), (2,))
    assert saved == [3]
    monkeypatch.setenv("TRAINACT_CHECKPOINT_INTERVAL", "0")
    saved.clear()
    train_schedule(tmp_path / "every", 3, (1e-3, 1e-4), (2,))
    assert saved == [1, 2, 3]


def test_summary_records_the_device_determinism_and_kernels(tmp_path):
    train_tiny(tmp_path, activation="lc")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["device"] == {"type": "cpu", "name": "cpu"}
    assert summary["activation_kernels"]["implementations"] == ["eager"]  # TINY_MODEL: impl eager
    assert set(summary["determinism"]) >= {"cudnn_benchmark", "tf32_matmul", "deterministic_algorithms"}
    assert summary["compile_cache"]


# ------------------------------------------------------------------ trunks and branches


def run_schedule(out_dir, boundaries, rates, epochs, activation="lc", **kwargs):
    settings_kwargs = {k: kwargs.pop(k) for k in ("snapshot_epochs", "batch_size") if k in kwargs}
    settings = TrainSettings(
        epochs=epochs, batch_size=settings_kwargs.get("batch_size", 32), lr_boundaries=boundaries,
        learning_rates=rates, snapshot_epochs=settings_kwargs.get("snapshot_epochs", ()), device="cpu",
    )  # fmt: skip
    seed_everything(settings.seed)
    model = build_model("small", activation, TINY_MODEL)
    return fit(model, tiny_data(), settings, out_dir, progress=False, **kwargs)


def comparable(rows):
    """History rows without the wall-clock columns."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in rows]


@pytest.mark.parametrize("activation", ["relu", "fourier", "lc"])
def test_a_branch_equals_its_schedule_run_from_scratch(tmp_path, activation):
    """Trunk: 4 epochs at 1e-3 with snapshots after 1 and 3; branch at L = 1 and 3 with a tail of
    2 epochs at 1e-4 and 1 at 1e-5. Each branch equals the same schedule run from the start: the
    history (eval-mode training accuracy included), the health rows and the weights, bit for bit."""
    trunk = run_schedule(tmp_path / "trunk", (100,), (1e-3, 1e-4), 4, activation, snapshot_epochs=(1, 3))
    assert len(trunk) == 4
    for L in (1, 3):
        schedule = ((L, L + 2), (1e-3, 1e-4, 1e-5), L + 3)
        scratch = run_schedule(tmp_path / f"scratch{L}", *schedule, activation)
        branch = run_schedule(
            tmp_path / f"branch{L}",
            *schedule,
            activation,
            branch_from=tmp_path / "trunk" / "snapshots" / f"epoch{L}.pt",
        )
        assert comparable(branch) == comparable(scratch)
        assert comparable(branch[:L]) == comparable(trunk[:L])  # the trunk's epochs, copied, not recomputed
        a = torch.load(tmp_path / f"scratch{L}" / "model.pt")
        b = torch.load(tmp_path / f"branch{L}" / "model.pt")
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert (tmp_path / f"branch{L}" / HEALTH_FILE).read_text() == (
            tmp_path / f"scratch{L}" / HEALTH_FILE
        ).read_text()


def test_a_branch_computes_no_trunk_epoch(tmp_path, monkeypatch):
    """Branching after epoch 3 of a 4-epoch schedule trains exactly one epoch: 3 optimiser steps."""
    run_schedule(tmp_path / "trunk", (), (1e-3,), 3, snapshot_epochs=(3,))
    steps = []
    real = torch.optim.RMSprop.step
    monkeypatch.setattr(
        torch.optim.RMSprop, "step", lambda self, *a, **k: (steps.append(1), real(self, *a, **k))[1]
    )
    run_schedule(
        tmp_path / "branch", (3,), (1e-3, 1e-4), 4, branch_from=tmp_path / "trunk" / "snapshots" / "epoch3.pt"
    )
    assert len(steps) == 3


def test_a_branch_of_another_trunk_is_refused(tmp_path):
    from trainact.training.snapshots import SnapshotMismatch

    run_schedule(tmp_path / "trunk", (), (1e-3,), 2, snapshot_epochs=(2,))
    snapshot = tmp_path / "trunk" / "snapshots" / "epoch2.pt"
    with pytest.raises(SnapshotMismatch, match="learning rates for epochs 1-2"):
        run_schedule(tmp_path / "b1", (1,), (1e-3, 1e-4), 4, branch_from=snapshot)
    with pytest.raises(SnapshotMismatch, match="batch_size"):
        run_schedule(tmp_path / "b2", (2,), (1e-3, 1e-4), 4, branch_from=snapshot, batch_size=16)
    with pytest.raises(SnapshotMismatch, match="no snapshot"):
        run_schedule(tmp_path / "b3", (2,), (1e-3, 1e-4), 4, branch_from=tmp_path / "missing.pt")


def test_train_eval_accuracy_is_eval_mode_on_a_fixed_subset(tmp_path):
    """The eval-mode accuracy on the fixed training subset equals evaluation.evaluate on those images."""
    from trainact.data.loader import DeviceDataset
    from trainact.training.evaluation import evaluate
    from trainact.training.train import train_eval_subset

    data = tiny_data()
    subset = train_eval_subset(len(data.train_labels), 50)
    assert len(set(subset.tolist())) == 50 and subset.tolist() == sorted(subset.tolist())
    assert train_eval_subset(96, 50).tolist() == subset.tolist()  # the same for every run
    assert train_eval_subset(30, 50).tolist() == list(range(30))
    settings = TrainSettings(epochs=1, batch_size=32, train_eval_images=50, device="cpu")
    seed_everything(0)
    model = build_model("small", "relu", TINY_MODEL)
    history = fit(model, data, settings, tmp_path, progress=False)
    loss, acc = evaluate(model, DeviceDataset(data.train_images[subset], data.train_labels[subset]), 1000)
    assert history[-1]["train_eval_acc"] == round(acc, 6)
    assert history[-1]["train_eval_loss"] == round(loss, 6)


def test_a_trunk_resumed_after_its_snapshots_were_deleted_writes_them_again(tmp_path):
    """A failed workflow job loses its declared outputs (the snapshots) but keeps its checkpoint:
    the rerun resumes from the last snapshot before the gap and ends with every snapshot and the
    uninterrupted weights."""
    args = ((), (1e-3,), 4)
    run_schedule(tmp_path / "full", *args, snapshot_epochs=(1, 2, 3, 4))
    run_schedule(tmp_path / "cut", *args, snapshot_epochs=(1, 2, 3, 4), stop_after_epoch=3)
    (tmp_path / "cut" / "snapshots" / "epoch2.pt").unlink()
    (tmp_path / "cut" / "snapshots" / "epoch3.pt").unlink()
    run_schedule(tmp_path / "cut", *args, snapshot_epochs=(1, 2, 3, 4))
    assert comparable(read_history(tmp_path / "cut" / "history.csv")) == comparable(
        read_history(tmp_path / "full" / "history.csv")
    )
    for epoch in (1, 2, 3, 4):
        a = torch.load(tmp_path / "full" / "snapshots" / f"epoch{epoch}.pt", weights_only=False)["model"]
        b = torch.load(tmp_path / "cut" / "snapshots" / f"epoch{epoch}.pt", weights_only=False)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
    a, b = torch.load(tmp_path / "full" / "model.pt"), torch.load(tmp_path / "cut" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_heldout_accuracy_is_eval_mode_on_the_validation_split(tmp_path):
    """With a validation split the history's heldout_* equal evaluation.evaluate on its images, and
    the training itself is the one without a split; without a split heldout_* stay empty."""
    import dataclasses

    from trainact.data.loader import DeviceDataset
    from trainact.training.evaluation import evaluate

    held_out = tiny_data(n_train=30, seed=1)
    data = dataclasses.replace(
        tiny_data(), validation_images=held_out.train_images, validation_labels=held_out.train_labels
    )
    settings = TrainSettings(epochs=2, batch_size=32, device="cpu")
    runs, models = {}, {}
    for name, run_data in (("split", data), ("none", tiny_data())):
        seed_everything(0)
        models[name] = build_model("small", "relu", TINY_MODEL)
        runs[name] = fit(models[name], run_data, settings, tmp_path / name, progress=False)
    loss, acc = evaluate(models["split"], DeviceDataset(held_out.train_images, held_out.train_labels), 1000)
    assert runs["split"][-1]["heldout_acc"] == round(acc, 6)
    assert runs["split"][-1]["heldout_loss"] == round(loss, 6)
    assert [r["heldout_acc"] for r in read_history(tmp_path / "split" / "history.csv")] == [
        str(r["heldout_acc"]) for r in runs["split"]
    ]
    assert {r["heldout_acc"] for r in read_history(tmp_path / "none" / "history.csv")} == {""}

    def without_heldout(rows):
        return [{k: v for k, v in r.items() if not k.startswith("heldout_")} for r in comparable(rows)]

    assert without_heldout(runs["split"]) == without_heldout(runs["none"])
