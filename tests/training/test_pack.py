"""Packs: several networks in one process give each network's files bit for bit as a job of its
own does; a pack killed mid-epoch resumes every network to the uninterrupted result without
retraining finished ones; one diverging network does not stop the others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from training.test_train import TINY_MODEL, read_history, save_tiny_data, tiny_data

from trainact.nn.calibration import calibrate
from trainact.nn.models import build_model
from trainact.run_files import ACTIVATIONS_FILE, HEALTH_FILE, HISTORY_FILE, MODEL_FILE, SUMMARY_FILE
from trainact.training.pack import PackMember, pack_members, train_pack
from trainact.training.random_state import seed_everything
from trainact.training.train import fit, training
from trainact.training.train_settings import TrainSettings

CPU = torch.device("cpu")
#: Columns of history.csv that measure time, not training.
TIMING = {"seconds", "images_per_s"}


def settings_for(seed: int, **overrides) -> TrainSettings:
    return TrainSettings(
        **{
            "epochs": 3,
            "batch_size": 32,
            "lr_boundaries": (2,),
            "learning_rates": (1e-3, 1e-4),
            "device": "cpu",
        }
        | overrides,
        seed=seed,
    )


def build(member: PackMember, data, **overrides):
    """As `trainact train` builds a network: seeded, built, calibrated."""
    settings = settings_for(member.seed, **overrides)
    seed_everything(settings.seed)
    model = build_model(member.size, member.activation, TINY_MODEL)
    calibrate(model, data.train_images, settings.seed)
    return model, settings


def members(root: Path, activations=("relu", "fourier", "lc"), seeds=(0, 1)) -> list[PackMember]:
    networks = [(a, s) for a in activations for s in seeds]
    return pack_members(["small"], activations, seeds, [root / f"{a}-{s}" for a, s in networks])


def outputs(folder: Path) -> dict:
    """A run's results without the columns and fields that measure time or name the folder."""
    history = [
        {k: v for k, v in row.items() if k not in TIMING} for row in read_history(folder / HISTORY_FILE)
    ]
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    return {
        "history": history,
        "health": (folder / HEALTH_FILE).read_text(),
        "activations": (folder / ACTIVATIONS_FILE).read_text(),
        "weights": torch.load(folder / MODEL_FILE),
        "kernels": summary["activation_kernels"],
    }


def assert_same_outputs(a: Path, b: Path) -> None:
    first, second = outputs(a), outputs(b)
    assert first["history"] == second["history"]
    assert first["health"] == second["health"]
    assert first["activations"] == second["activations"]
    assert first["kernels"] == second["kernels"]
    assert first["weights"].keys() == second["weights"].keys()
    for key, value in first["weights"].items():
        assert torch.equal(value, second["weights"][key]), key


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """Each network trained by `fit` alone, as a job of one network trains it."""
    root = tmp_path_factory.mktemp("alone")
    data = tiny_data()
    for member in members(root):
        model, settings = build(member, data)
        fit(model, data, settings, member.out_dir, progress=False)
    return root


def run_pack(root: Path, interleave: bool, data=None, **overrides):
    data = data or tiny_data()
    return train_pack(
        members(root),
        lambda m: build(m, data, **overrides),
        data,
        CPU,
        train_kwargs=lambda m: {"progress": False},
        interleave=interleave,
    )


@pytest.mark.parametrize("interleave", [False, True], ids=["one-after-the-other", "interleaved"])
def test_a_pack_writes_each_networks_files_as_a_job_of_its_own(alone, tmp_path, interleave):
    """Bit for bit: weights, history (without its timings), health, activations, kernel record.
    Interleaved is how a GPU runs a pack (each network on its stream): on the CPU it shows that
    taking turns step by step changes no number."""
    outcome = run_pack(tmp_path, interleave)
    assert outcome.diverged == [] and len(outcome.status) == 6
    for member in members(tmp_path):
        assert_same_outputs(member.out_dir, alone / member.out_dir.name)


def test_each_network_has_its_own_kernel_record(tmp_path):
    run_pack(tmp_path, interleave=True)
    kernels = {m.activation: outputs(m.out_dir)["kernels"]["implementations"] for m in members(tmp_path)}
    assert kernels == {"relu": [], "fourier": ["eager"], "lc": ["eager"]}


def steps_per_member(root: Path, data, stop_after: int | None, seeds=(0, 1)) -> dict[str, int]:
    """Run an interleaved pack for at most ``stop_after`` turns (then drop it, as a kill would:
    nothing more is written), counting each network's steps."""
    runs = {}
    for member in members(root, seeds=seeds):
        model, settings = build(member, data)
        runs[str(member)] = training(model, data, settings, member.out_dir, progress=False)
    steps = dict.fromkeys(runs, 0)
    turns = 0
    while runs and (stop_after is None or turns < stop_after):
        for name, run in list(runs.items()):
            if run.advance():
                steps[name] += 1
            else:
                del runs[name]
        turns += 1
    return steps


def test_a_pack_killed_mid_epoch_resumes_every_network_to_the_uninterrupted_result(
    alone, tmp_path, monkeypatch
):
    """Killed in epoch 2 (96 images in batches of 32: 3 steps per epoch) after each network's
    checkpoint of epoch 1; started again, each network resumes there, and ends as if never killed."""
    monkeypatch.setenv("TRAINACT_CHECKPOINT_INTERVAL", "0")
    data = tiny_data()
    first = steps_per_member(tmp_path, data, stop_after=4)
    assert set(first.values()) == {4}  # the first epoch's 3 steps and one of the second
    assert all(len(read_history(m.out_dir / HISTORY_FILE)) == 1 for m in members(tmp_path))
    again = steps_per_member(tmp_path, data, stop_after=None)
    assert set(again.values()) == {6}  # epochs 2 and 3 only
    for member in members(tmp_path):
        assert_same_outputs(member.out_dir, alone / member.out_dir.name)


def test_networks_that_had_finished_are_not_retrained(alone, tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINACT_CHECKPOINT_INTERVAL", "0")
    data = tiny_data()
    steps_per_member(tmp_path, data, stop_after=None, seeds=(0,))  # seed 0 of every network finishes
    files = (MODEL_FILE, SUMMARY_FILE, HISTORY_FILE, HEALTH_FILE, ACTIVATIONS_FILE)
    finished = {
        m.out_dir / f: (m.out_dir / f).read_bytes() for m in members(tmp_path, seeds=(0,)) for f in files
    }
    steps = steps_per_member(tmp_path, data, stop_after=None, seeds=(0, 1))
    # Written again from the checkpoint with the same bytes (the kernel and step records are kept
    # there; model.pt is saved through a file object): Snakemake's content check sees no change.
    assert {path: path.read_bytes() for path in finished} == finished
    assert {name: count for name, count in steps.items() if name.endswith("seed0")} == {
        "small-relu-seed0": 0, "small-fourier-seed0": 0, "small-lc-seed0": 0,
    }  # fmt: skip
    assert all(count == 9 for name, count in steps.items() if name.endswith("seed1"))
    for member in members(tmp_path):
        assert_same_outputs(member.out_dir, alone / member.out_dir.name)


@pytest.mark.parametrize("interleave", [False, True], ids=["one-after-the-other", "interleaved"])
def test_one_diverging_network_does_not_stop_the_others(alone, tmp_path, interleave):
    data = tiny_data()

    def build_one_diverging(member):
        if (member.activation, member.seed) != ("fourier", 0):
            return build(member, data)
        return build(member, data, learning_rates=(1e12, 1e12))  # diverges in its first epoch

    outcome = train_pack(
        members(tmp_path), build_one_diverging, data, CPU,
        train_kwargs=lambda m: {"progress": False}, interleave=interleave,
    )  # fmt: skip
    assert outcome.diverged == ["small-fourier-seed0"]
    assert "non-finite" in outcome.messages["small-fourier-seed0"]
    assert read_history(tmp_path / "fourier-0" / HISTORY_FILE)[-1]["status"] == "diverged"
    for member in members(tmp_path):
        if str(member) != "small-fourier-seed0":
            assert_same_outputs(member.out_dir, alone / member.out_dir.name)


def test_pack_members_name_the_networks_and_check_the_folders(tmp_path):
    pack = pack_members(["small", "middle"], ["relu"], [0, 1], [tmp_path / str(i) for i in range(4)])
    assert [str(m) for m in pack] == [
        "small-relu-seed0", "small-relu-seed1", "middle-relu-seed0", "middle-relu-seed1",
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"4 networks \(2 sizes x 1 activations x 2 seeds\) need 4 output"):
        pack_members(["small", "middle"], ["relu"], [0, 1], [tmp_path / "a"])
    with pytest.raises(ValueError, match="repeated"):
        pack_members(["small"], ["relu"], [0, 1], [tmp_path / "a", tmp_path / "a"])


def test_cli_trains_a_pack_into_one_folder_per_network(alone, tmp_path):
    """`trainact train` with two seeds: one process, each seed's files as `fit` writes them."""
    data_file = tmp_path / "data.npz"
    save_tiny_data(data_file)
    settings = settings_for(0)
    params = {
        "model": TINY_MODEL,
        "train": {
            "epochs": settings.epochs, "batch_size": settings.batch_size,
            "lr_boundaries": list(settings.lr_boundaries), "learning_rates": list(settings.learning_rates),
        },
    }  # fmt: skip
    folders = [tmp_path / "lc-0", tmp_path / "lc-1"]
    command = [sys.executable, "-m", "trainact", "train", "--data", str(data_file), "--size", "small"]
    command += ["--activation", "lc", "--seed", "0", "1", "--params", json.dumps(params), "--device", "cpu"]
    command += ["--no-progress", "--out-dir", *map(str, folders)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for folder in folders:
        assert_same_outputs(folder, alone / folder.name)
    bad = subprocess.run(command[:-1], capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "2 networks" in bad.stderr and "need 2 output folders" in bad.stderr
    assert np.isfinite(float(read_history(folders[0] / HISTORY_FILE)[-1]["val_loss"]))


def test_a_job_compiles_into_the_persistent_compile_cache(tmp_path):
    """`trainact train` configures the compile cache before anything compiles: calibration runs
    the activation kernels, and torch's compiler fixes its cache folder on first use (it fell back
    to its temporary default, so every job compiled the kernels anew)."""
    data_file = tmp_path / "data.npz"
    save_tiny_data(data_file)
    params = {"model": {**TINY_MODEL, "impl": "auto"}, "train": {"epochs": 1, "batch_size": 32}}
    env = {k: v for k, v in os.environ.items() if k not in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")}
    env["TRAINACT_COMPILE_CACHE"] = str(tmp_path / "cache")
    command = [sys.executable, "-m", "trainact", "train", "--data", str(data_file), "--size", "small"]
    command += ["--activation", "lc", "--params", json.dumps(params), "--device", "cpu", "--no-progress"]
    result = subprocess.run(
        [*command, "--out-dir", str(tmp_path / "run")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / SUMMARY_FILE).read_text())
    assert summary["activation_kernels"]["implementations"][:1] == ["compiled"]
    assert summary["compile_cache"] == str(tmp_path / "cache" / "inductor")
    assert any((tmp_path / "cache" / "inductor").iterdir())
