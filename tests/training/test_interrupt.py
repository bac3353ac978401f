"""SIGTERM and SIGINT: training (alone and in a pack), autoencoder pretraining and PSO stop at
their next safe point with a checkpoint, log one line naming the signal and the checkpoint, and
exit 128 + the signal's number; the rerun resumes and ends bit for bit as an uninterrupted run.

The checkpoint interval is an hour here (``TRAINACT_CHECKPOINT_INTERVAL=3600``): no checkpoint
is written by time, so everything the rerun resumes from was written at the signal. The
subprocess tests send a real SIGTERM from outside to ``python -m trainact ...``; a hook in the
child (:data:`CHILD`) only holds it at a known point (inside epoch 2, after generation 2) until
the signal has arrived, so that the test does not depend on timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from training.test_autoencoder import TINY_MODEL as AE_MODEL
from training.test_autoencoder import settings as ae_settings
from training.test_autoencoder import tiny_data as ae_data
from training.test_pack import assert_same_outputs, build, members
from training.test_pso import SETTINGS as PSO_SETTINGS
from training.test_pso import TINY_MODEL as PSO_MODEL
from training.test_pso import read_rows
from training.test_pso import tiny_data as pso_data
from training.test_train import TINY_MODEL, save_tiny_data, tiny_data

from trainact.cli import main
from trainact.run_files import CHECKPOINT_FILE, PRETRAIN_CHECKPOINT_FILE, PSO_BEST_FILE
from trainact.training import interrupt
from trainact.training.autoencoder import pretrain
from trainact.training.checkpoints import INTERVAL_ENV
from trainact.training.graph_step import TrainStepper
from trainact.training.pack import train_pack
from trainact.training.pso import PSOSettings, train_pso
from trainact.training.train import EPOCH_POSITION_KEY, fit

CPU = torch.device("cpu")
HOUR = "3600"

#: The child process: ``CHILD marker kind after -- <trainact arguments>``. It patches the
#: training step (kind ``step``) or the swarm's generation (``generation``) so that after the
#: ``after``-th one it touches ``marker`` and waits (at most a minute) until a signal has been
#: received; then the job goes on to its next safe point. Nothing else differs from
#: ``python -m trainact``.
CHILD = """
import pathlib, sys, time
from trainact.training import interrupt
from trainact.training.graph_step import TrainStepper
from trainact.training.swarm import Swarm

marker, kind, after = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
cls, name = {"step": (TrainStepper, "step"), "generation": (Swarm, "step")}[kind]
real, calls = getattr(cls, name), []

def held(*args, **kwargs):
    result = real(*args, **kwargs)
    calls.append(1)
    if len(calls) == after:
        marker.touch()
        deadline = time.monotonic() + 60
        while interrupt.requested() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    return result

setattr(cls, name, held)
from trainact.cli import main
raise SystemExit(main(sys.argv[5:]))
"""


def interrupted_child(tmp_path: Path, kind: str, after: int, argv: list[str], signum=signal.SIGTERM):
    """Run ``trainact <argv>`` held after its ``after``-th step or generation, send it ``signum``
    from here, and return its exit status and stderr."""
    script, marker = tmp_path / "child.py", tmp_path / "held"
    script.write_text(CHILD)
    env = {**os.environ, INTERVAL_ENV: HOUR}
    command = [sys.executable, str(script), str(marker), kind, str(after), "--", *argv]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env) as child:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert child.poll() is None, child.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the child never reached the hold"
            time.sleep(0.05)
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=300)
    return child.returncode, stderr


def signal_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "received SIG" in line]


# ------------------------------------------------------------------------- the mechanism


def test_signals_are_recorded_while_handled_and_the_handlers_restored_after():
    before = {s: signal.getsignal(s) for s in interrupt.HANDLED_SIGNALS}
    with interrupt.handling_signals():
        assert interrupt.requested() is None
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: recorded
        assert interrupt.requested() == signal.SIGINT
        # A second signal while the checkpoint is written is ignored: the write completes.
        stop = interrupt.stop_with(lambda: os.kill(os.getpid(), signal.SIGTERM) or ["ckpt after epoch 1"])
        assert stop.exit_code == 130
        assert str(stop) == (
            "received SIGINT: checkpoint written to ckpt after epoch 1; exiting (130) so that a rerun resumes"
        )
        # A second signal anywhere else stops at once (a job stuck before its first safe point).
        with pytest.raises(
            interrupt.Interrupted, match="received SIGTERM again before a safe point"
        ) as raised:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        assert raised.value.exit_code == 143 and raised.value.at_once
    assert {s: signal.getsignal(s) for s in interrupt.HANDLED_SIGNALS} == before
    assert interrupt.requested() is None


# ------------------------------------------------------------------------------ training


def train_params(settings) -> dict:
    return {
        "model": TINY_MODEL,
        "train": {
            "epochs": settings.epochs, "batch_size": settings.batch_size,
            "lr_boundaries": list(settings.lr_boundaries), "learning_rates": list(settings.learning_rates),
        },
    }  # fmt: skip


@pytest.mark.slow
def test_sigterm_mid_epoch_then_a_rerun_equals_the_uninterrupted_training(tmp_path):
    """`trainact train`, 3 epochs of 3 steps (96 images, batches of 32): SIGTERM after the first
    step of epoch 2. Exit 143, one line naming the checkpoint and the position, which the
    checkpoint holds; the rerun does the 5 steps left and ends as `fit` does uninterrupted."""
    member = members(tmp_path / "alone", activations=("lc",), seeds=(0,))[0]
    model, settings = build(member, tiny_data())
    fit(model, tiny_data(), settings, member.out_dir, progress=False)

    data, run = tmp_path / "data.npz", tmp_path / "run"
    save_tiny_data(data)
    argv = ["train", "--data", str(data), "--size", "small", "--activation", "lc", "--seed", "0"]
    argv += ["--params", json.dumps(train_params(settings)), "--device", "cpu", "--no-progress"]
    argv += ["--out-dir", str(run)]
    status, stderr = interrupted_child(tmp_path, "step", 4, argv)
    checkpoint = run / CHECKPOINT_FILE
    assert status == 143, stderr[-3000:]
    assert len(signal_lines(stderr)) == 1
    assert signal_lines(stderr)[0].endswith(
        f"received SIGTERM: checkpoint written to {checkpoint} after step 1 of 3 of epoch 2; "
        "exiting (143) so that a rerun resumes"
    )
    position = torch.load(checkpoint, weights_only=False)[EPOCH_POSITION_KEY]
    assert (position["epoch"], position["step"], position["steps"]) == (2, 1, 3)

    steps, real = [], TrainStepper.step
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(INTERVAL_ENV, HOUR)
        patch.setattr(TrainStepper, "step", lambda *a: steps.append(1) or real(*a))
        assert main(argv) == 0
    assert len(steps) == 5  # epoch 2's last two steps and epoch 3's three
    assert_same_outputs(run, member.out_dir)


@pytest.mark.slow
def test_a_signal_between_epochs_checkpoints_the_epoch_done(tmp_path, monkeypatch):
    """SIGTERM during epoch 1's last step: the run stops before epoch 2's first step with the
    checkpoint an epoch's end writes (no position); the rerun ends as the uninterrupted run."""
    monkeypatch.setenv(INTERVAL_ENV, HOUR)
    alone, run = members(tmp_path / "alone", ("relu",), (0,))[0], members(tmp_path, ("relu",), (0,))[0]
    model, settings = build(alone, tiny_data())
    fit(model, tiny_data(), settings, alone.out_dir, progress=False)
    model, settings = build(run, tiny_data())
    kill_at_step(monkeypatch, 3, signal.SIGTERM)
    with interrupt.handling_signals(), pytest.raises(interrupt.Interrupted) as raised:
        fit(model, tiny_data(), settings, run.out_dir, progress=False)
    assert raised.value.saved == [f"{run.out_dir / CHECKPOINT_FILE} at the start of epoch 2"]
    assert EPOCH_POSITION_KEY not in torch.load(run.out_dir / CHECKPOINT_FILE, weights_only=False)
    monkeypatch.undo()
    model, settings = build(run, tiny_data())
    fit(model, tiny_data(), settings, run.out_dir, progress=False)
    assert_same_outputs(run.out_dir, alone.out_dir)


def kill_at_step(monkeypatch, after: int, signum: int) -> None:
    """Send ``signum`` to this process during the ``after``-th training step."""
    real, calls = TrainStepper.step, []

    def step(self, index):
        calls.append(1)
        if len(calls) == after:
            os.kill(os.getpid(), signum)
        return real(self, index)

    monkeypatch.setattr(TrainStepper, "step", step)


@pytest.mark.slow
def test_sigint_stops_an_interleaved_pack_with_every_network_checkpointed(tmp_path, monkeypatch):
    """Ctrl-C during relu's 5th step (its second of epoch 2, in the pack's 5th turn): lc stops
    before its 5th step, relu before its 6th, each with its checkpoint inside epoch 2, and the one
    line names both; the rerun ends each network as it ends trained alone."""
    monkeypatch.setenv(INTERVAL_ENV, HOUR)
    data = tiny_data()
    pack, alone = (
        members(tmp_path / "pack", ("relu", "lc"), (0,)),
        members(tmp_path / "alone", ("relu", "lc"), (0,)),
    )
    for member in alone:
        model, settings = build(member, data)
        fit(model, data, settings, member.out_dir, progress=False)

    def run_pack():
        return train_pack(
            pack,
            lambda m: build(m, data),
            data,
            CPU,
            train_kwargs=lambda m: {"progress": False},
            interleave=True,
        )

    kill_at_step(monkeypatch, 9, signal.SIGINT)  # relu's 5th step = its second of epoch 2
    with interrupt.handling_signals(), pytest.raises(interrupt.Interrupted) as raised:
        run_pack()
    assert raised.value.exit_code == 130
    assert str(raised.value) == (
        f"received SIGINT: checkpoints written to {pack[1].out_dir / CHECKPOINT_FILE} after step 1 of 3 of "
        f"epoch 2; {pack[0].out_dir / CHECKPOINT_FILE} after step 2 of 3 of epoch 2; "
        "exiting (130) so that a rerun resumes"
    )
    monkeypatch.undo()
    run_pack()
    for member, reference in zip(pack, alone):
        assert_same_outputs(member.out_dir, reference.out_dir)


# ------------------------------------------------------------------------------------ PSO


@pytest.mark.slow
def test_sigterm_mid_generation_then_a_rerun_equals_the_uninterrupted_pso(tmp_path):
    """`trainact pso`, 6 generations: SIGTERM during generation 2 (after its swarm update). Exit
    143, one line; the rerun continues after generation 2 and ends as an uninterrupted run."""
    settings = PSOSettings(**{**PSO_SETTINGS, "seed": 0})
    full = train_pso(pso_data(), settings, PSO_MODEL, tmp_path / "full", progress=False)

    data, run = tmp_path / "data.npz", tmp_path / "run"
    save_pso_data(data)
    pso = {k: v for k, v in PSO_SETTINGS.items() if k not in ("seed", "device")}
    argv = [
        "pso",
        "--data",
        str(data),
        "--seed",
        "0",
        "--params",
        json.dumps({"model": PSO_MODEL, "pso": pso}),
    ]
    argv += ["--device", "cpu", "--no-progress", "--out-dir", str(run)]
    status, stderr = interrupted_child(tmp_path, "generation", 2, argv)
    assert status == 143, stderr[-3000:]
    assert len(signal_lines(stderr)) == 1
    assert signal_lines(stderr)[0].endswith(
        f"received SIGTERM: checkpoint written to {run / CHECKPOINT_FILE} after generation 2 of 6; "
        "exiting (143) so that a rerun resumes"
    )
    assert len(read_rows(run / "history.csv")) == 3 and not (run / PSO_BEST_FILE).exists()

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(INTERVAL_ENV, HOUR)
        assert main(argv) == 0

    def values(rows):
        return [{k: float(v) for k, v in row.items() if k != "seconds"} for row in rows]

    assert values(read_rows(run / "history.csv")) == values(full)
    a, b = torch.load(tmp_path / "full" / PSO_BEST_FILE), torch.load(run / PSO_BEST_FILE)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def save_pso_data(path: Path) -> None:
    import numpy as np

    data = pso_data()
    np.savez(
        path,
        train_images=data.train_images, train_labels=data.train_labels,
        test_images=data.test_images, test_labels=data.test_labels,
        class_names=np.array(data.class_names), source_md5=np.array(data.source_md5),
    )  # fmt: skip


# ---------------------------------------------------------------------------- autoencoder


@pytest.mark.slow
def test_sigterm_mid_stage_epoch_then_a_rerun_equals_the_uninterrupted_pretraining(tmp_path, monkeypatch):
    """SIGTERM during the 3rd batch of stage 1's epoch 2 (64 images in batches of 8: 8 per
    epoch): the checkpoint records 3 batches done; the rerun ends with the same rows and weights."""
    from trainact.training import autoencoder

    monkeypatch.setenv(INTERVAL_ENV, HOUR)
    full_model, full_rows = pretrain(ae_data(), ae_settings(), AE_MODEL, tmp_path / "full", progress=False)
    real, calls = autoencoder.train_step, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3 * 8 + 8 + 3:  # stage 0's 3 epochs, stage 1's epoch 1, 3 batches
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(autoencoder, "train_step", step)
    with interrupt.handling_signals(), pytest.raises(interrupt.Interrupted) as raised:
        pretrain(ae_data(), ae_settings(), AE_MODEL, tmp_path / "run", progress=False)
    checkpoint = tmp_path / "run" / PRETRAIN_CHECKPOINT_FILE
    assert raised.value.saved == [f"{checkpoint} after batch 3 of 8 of stage 1 epoch 2"]
    monkeypatch.setattr(autoencoder, "train_step", real)
    model, rows = pretrain(ae_data(), ae_settings(), AE_MODEL, tmp_path / "run", progress=False)
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in rows] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in full_rows
    ]
    for key, value in full_model.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
