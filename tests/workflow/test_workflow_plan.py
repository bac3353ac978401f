"""trainact.workflow_plan: the slices the jobs carry and the sensitivity study's roots, planned
from a config passed in (the repository's config.yaml with its schema's defaults, edited per
test), without Snakemake."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from trainact import workflow_plan as plan

REPO = Path(__file__).resolve().parents[2]
OUT = "results/paper"


@pytest.fixture
def config() -> dict:
    """config.yaml (it sets every key the schema describes), study on, small networks."""
    return copy.deepcopy(yaml.safe_load((REPO / "config.yaml").read_text()))


def with_study(config: dict, initialisations: list[dict], preprocessing=("none",)) -> dict:
    config["sensitivity"].update(
        enabled=True, initialisations=initialisations, preprocessing=list(preprocessing)
    )
    return config


def test_canonical_json_sorts_keys_and_drops_whitespace():
    assert plan.canonical({"b": [1, 2], "a": {"d": 1, "c": None}}) == '{"a":{"c":null,"d":1},"b":[1,2]}'


def test_url_basename():
    assert plan.url_basename("https://host/x/cifar-10-python.tar.gz?x=1") == "cifar-10-python.tar.gz"
    assert plan.url_basename("https://host/") == "archive.tar.gz"


def test_a_relu_network_takes_neither_the_trainable_activations_settings_nor_their_lr_scale(config):
    relu = plan.train_slice(config["model"], config["train"], "small", "relu")
    assert set(relu["model"]) == {"hidden", "filters", "preprocessing"}
    assert relu["model"]["filters"] == {"small": config["model"]["filters"]["small"]}
    assert "activation_lr_scale" not in relu["train"]
    lc = plan.train_slice(config["model"], config["train"], "small", "lc")
    assert lc["model"]["lc"] == config["model"]["lc"] and "fourier" not in lc["model"]
    assert lc["train"] == config["train"]


def test_the_controls_join_the_slice_only_when_they_change_the_network(config):
    model = {**config["model"], "init": "glorot_uniform", "relu_gain": True}
    relu = plan.train_slice(model, config["train"], "small", "relu")
    assert relu["model"]["init"] == "glorot_uniform" and relu["model"]["relu_gain"] is True
    assert set(relu["model"]["lc"]) == {"candidates", "per_channel"}
    assert "activation_lr_scale" in relu["train"]  # a gained ReLU has activation parameters


def test_a_variant_whose_slices_equal_the_main_grid_reuses_the_main_results(config):
    config = with_study(config, [{"name": "fixed", "model": {"fourier": {"init": "relu_fit"}}}])
    study = plan.sensitivity_plan(config)
    assert study.roots == {"fixed+none": {a: OUT for a in ("relu", "fourier", "lc")}}
    assert study.reference == "fixed+none"
    assert [v["name"] for v in study.spec_variants] == ["fixed+none"]  # no "main" inserted


def test_two_variants_with_equal_slices_share_one_root(config):
    # "late" differs from "early" only in a setting no network of the study reads
    config = with_study(
        config,
        [
            {"name": "early", "model": {"fourier": {"init": "random"}}},
            {"name": "late", "model": {"fourier": {"init": "random"}, "lc": {"eps": 0.01}}},
        ],
    )
    roots = plan.sensitivity_plan(config).roots
    assert roots["early+none"]["fourier"] == f"{OUT}/sensitivity/early+none"
    assert roots["late+none"]["fourier"] == f"{OUT}/sensitivity/early+none"
    # their ReLU and LC networks are the main grid's
    assert roots["late+none"]["relu"] == roots["late+none"]["lc"] == OUT


def test_a_relu_network_is_shared_across_initialisations(config):
    config = with_study(
        config,
        [
            {"name": "fixed", "model": {"fourier": {"init": "relu_fit"}}},
            {"name": "random", "model": {"fourier": {"init": "random"}, "lc": {"init": "uniform"}}},
        ],
        preprocessing=("none", "standardize"),
    )
    roots = plan.sensitivity_plan(config).roots
    assert roots["random+none"]["relu"] == OUT
    # the standardised ReLU network is trained once, under the first variant that needs it
    assert roots["fixed+standardize"]["relu"] == f"{OUT}/sensitivity/fixed+standardize"
    assert roots["random+standardize"]["relu"] == f"{OUT}/sensitivity/fixed+standardize"
    assert roots["random+standardize"]["fourier"] == f"{OUT}/sensitivity/random+standardize"


def test_the_main_reference_joins_when_no_variant_is_the_main_grid(config):
    config = with_study(
        config, [{"name": "random", "model": {"fourier": {"init": "random"}}}], preprocessing=("standardize",)
    )
    study = plan.sensitivity_plan(config)
    assert study.reference == "main"
    assert study.spec_variants[0] == {
        "name": "main",
        "initialisation": "main",
        "preprocessing": config["model"]["preprocessing"],
        "roots": {a: OUT for a in config["sensitivity"]["activations"]},
    }
    params = plan.sensitivity_params(config, study)
    assert params["reference"] == "main" and params["variants"] == study.spec_variants
    # the histories read: the main grid's and the variant's own
    inputs = plan.sensitivity_inputs(config, study)
    assert f"{OUT}/train/small-relu/seed0/history.csv" in inputs
    assert f"{OUT}/sensitivity/random+standardize/train/small-fourier/seed0/history.csv" in inputs


def test_a_variants_settings_are_its_entry_merged_over_the_config(config):
    config = with_study(config, [{"name": "slow", "train": {"activation_lr_scale": 0.1}}])
    model, train = plan.sensitivity_plan(config).settings("slow+none")
    assert train == {**config["train"], "activation_lr_scale": 0.1}
    assert model == {**config["model"], "preprocessing": "none"}


def test_the_study_switched_off_plans_nothing(config):
    config["sensitivity"]["enabled"] = False
    study = plan.sensitivity_plan(config)
    assert study.variants == [] and study.spec_variants == [] and study.reference == "main"
    assert plan.sensitivity_inputs(config, study) == []


def test_schedule_axis_points_reuse_the_main_grid_for_the_configs_own_schedule(config):
    config["schedule_axis"]["enabled"] = True
    points = plan.schedule_axis_points(config)
    branches = plan.schedule_axis_branches(config)
    assert [p["first_phase"] for p in points] == config["schedule_axis"]["first_phase_epochs"]
    for point in points:
        own = point["first_phase"] not in branches
        assert (point["root"] == OUT) == own
    trunk = plan.trunk_slice(config, "small", "relu")
    assert trunk["model"] == plan.model_slice(config["model"], "small", "relu")
    config["schedule_axis"]["enabled"] = False
    assert plan.schedule_axis_points(config) == [] and plan.schedule_axis_inputs(config) == []


def test_the_paper_report_gets_the_whole_config_but_the_devices(config):
    """... and but the divergence policy: neither changes a result (plan.NO_RESULT_SETTINGS)."""
    params = plan.analysis_params(config)
    assert "devices" not in params["paper_report"]["settings"]
    assert "on_divergence" in config and "on_divergence" not in params["paper_report"]["settings"]
    assert params["paper_report"]["settings"]["train"] == config["train"]
    assert params["aggregate"]["settings"] == {"train": config["train"], "dataset": config["dataset"]}
    json.dumps(params)  # plain data


def test_the_planner_imports_no_torch():
    """Snakemake imports it while parsing the workflow."""
    import subprocess
    import sys

    code = "import sys, trainact.workflow_plan; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": str(REPO / "src")}, check=True)  # fmt: skip
    assert result.stdout.strip() == "False"


def test_the_section5_networks_join_the_training_runs_once(config):
    config["experiment"].update(sizes=["middle"], activations=["relu"], seeds=[0])
    train = plan.result_inputs(config)["train"]
    # PSO's reference (middle relu) is in the grid; the autoencoder's baseline (middle fourier) is not
    assert train == [
        f"{OUT}/train/middle-relu/seed0/history.csv",
        f"{OUT}/train/middle-fourier/seed0/history.csv",
    ]
    assert plan.grid_run_files(config, ["activations.json"], trainable_only=True) == []
    summaries = plan.run_summaries(config, plan.sensitivity_plan(config))
    assert f"{OUT}/pso/seed0/summary.json" in summaries and summaries == sorted(set(summaries))
