"""The paper preset's wall-time estimate: the training it counts, and its arithmetic."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from trainact.bench.estimate import FORWARD_SHARE, preset_estimate, training_epochs
from trainact.names import ACTIVATIONS, SIZES

CONFIG = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text())


def test_the_grid_alone_is_nine_networks_times_seeds_times_epochs():
    config = copy.deepcopy(CONFIG)
    config["sensitivity"]["enabled"] = False
    config["schedule_axis"]["enabled"] = False
    epochs = training_epochs(config)
    ae = config["autoencoder"]
    seeds, per_run = len(config["experiment"]["seeds"]), config["train"]["epochs"]
    expected = {(s, a): seeds * per_run for s in SIZES for a in ACTIVATIONS}
    expected[ae["size"], ae["activation"]] += seeds * (per_run + 4 * ae["epochs_per_stage"])
    assert dict(epochs) == expected


def test_the_axis_counts_one_trunk_and_the_tails_per_network_and_seed():
    config = copy.deepcopy(CONFIG)
    config["sensitivity"]["enabled"] = False
    without = copy.deepcopy(config)
    without["schedule_axis"]["enabled"] = False
    axis = config["schedule_axis"]
    added = training_epochs(config) - training_epochs(without)
    per_network = max(axis["first_phase_epochs"]) + sum(axis["tail_epochs"]) * len(axis["first_phase_epochs"])
    seeds = len(config["experiment"]["seeds"])
    assert dict(added) == {(s, a): per_network * seeds for s in axis["sizes"] for a in axis["activations"]}


def test_hours_are_epochs_times_steps_and_evaluation_divided_by_the_pack_speedup():
    step_ms = {(s, a): 2.0 for s in SIZES for a in ACTIVATIONS}
    one = preset_estimate(step_ms, CONFIG, train_images=50_000, eval_images=20_000)
    batch = CONFIG["train"]["batch_size"]
    steps = -(-50_000 // batch) + FORWARD_SHARE * 20_000 / batch
    train_s = sum(training_epochs(CONFIG).values()) * steps * 2.0 / 1000
    assert one["hours_one_at_a_time"] == pytest.approx(
        train_s / 3600 + one["seconds_one_at_a_time"]["pso"] / 3600, abs=0.01
    )
    packed = preset_estimate(step_ms, CONFIG, pack_speedup=2.0)
    assert packed["hours"] == pytest.approx(one["hours"] / 2, abs=0.01)
