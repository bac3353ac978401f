"""The workflow's config check (trainact.config_check) on the sensitivity study's variants."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import yaml

from trainact.config_check import config_errors

ROOT = Path(__file__).resolve().parents[2]
PRESET = "workflow/presets/smoke.yaml"
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


def errors_with(initialisations: list[dict]) -> list[str]:
    cfg = copy.deepcopy(CONFIG)
    cfg["sensitivity"]["initialisations"] = initialisations
    return config_errors(cfg, SCHEMA, lambda _: None)  # config.yaml sets every key


def test_the_paper_config_and_its_controls_pass():
    assert config_errors(copy.deepcopy(CONFIG), SCHEMA, lambda _: None) == []
    controls = {e["name"]: e for e in CONFIG["sensitivity"]["initialisations"][-3:]}
    assert controls == {
        "relu_gain": {"name": "relu_gain", "model": {"relu_gain": True}},
        "glorot": {"name": "glorot", "model": {"init": "glorot_uniform"}},
        "slow_activation": {"name": "slow_activation", "train": {"activation_lr_scale": 0.1}},
    }


def test_a_variants_model_and_train_overrides_are_checked_merged():
    lines = errors_with(
        [
            {"name": "bad_model", "model": {"init": "he"}},
            {"name": "bad_train", "train": {"activation_lr_scale": 0}},
            {"name": "bad_schedule", "train": {"learning_rates": [0.1]}},
            {"name": "fine", "model": {"relu_gain": True}, "train": {"activation_lr_scale": 0.5}},
        ]
    )
    assert len(lines) == 3, lines
    assert lines[0].startswith("sensitivity.initialisations.bad_model (merged over model): init = 'he'")
    assert lines[1].startswith(
        "sensitivity.initialisations.bad_train (merged over train): activation_lr_scale = 0"
    )
    assert lines[2].startswith(
        "sensitivity.initialisations.bad_schedule (merged over train): "
        "learning_rates = [0.1]: needs one more entry"
    )


def test_a_variant_with_an_unknown_section_is_refused():
    lines = errors_with([{"name": "odd", "pso": {"particles": 3}}])
    assert lines == [
        "sensitivity.initialisations.0: unknown key 'pso'; known keys: ['model', 'name', 'train']"
    ]


def test_a_schedule_axis_whose_tail_outruns_the_learning_rates_is_named():
    from trainact.config_check import schedule_axis_errors

    cfg = {"train": {"learning_rates": [1e-3, 1e-4]},
           "schedule_axis": {"enabled": True, "first_phase_epochs": [5], "tail_epochs": [4, 1]}}  # fmt: skip
    assert schedule_axis_errors(cfg) == [
        "schedule_axis.tail_epochs = [4, 1]: 2 tail phases, "
        "but train.learning_rates = [0.001, 0.0001] has only 1 rate(s) after the first"
    ]
    assert schedule_axis_errors({**cfg, "schedule_axis": {**cfg["schedule_axis"], "enabled": False}}) == []
    assert schedule_axis_errors({**cfg, "train": {"learning_rates": [1e-3, 1e-4, 1e-5]}}) == []


def test_an_unknown_key_is_named_with_the_known_keys_not_the_whole_section():
    cfg = copy.deepcopy(CONFIG)
    cfg["trian"] = {"epochs": 3}
    cfg["model"]["fourier"]["rnak"] = 2
    cfg["zzz"] = 1
    lines = config_errors(cfg, SCHEMA, lambda _: None)
    top_level = sorted(SCHEMA["properties"])
    assert lines == [
        f"<config>: unknown key 'trian' at the top level (did you mean 'train'?); known keys: {top_level}",
        f"<config>: unknown key 'zzz' at the top level; known keys: {top_level}",
        "model.fourier: unknown key 'rnak' (did you mean 'rank'?); known keys: "
        "['calibration_sigmas', 'impl', 'init', 'init_interval', 'omega', 'per_channel', 'rank']",
    ]
    merged_lines = errors_with([{"name": "typo", "model": {"hiden": 64}}])
    assert merged_lines == [
        "sensitivity.initialisations.typo (merged over model): model: unknown key 'hiden' "
        f"(did you mean 'hidden'?); known keys: {sorted(SCHEMA['properties']['model']['properties'])}"
    ]


def test_snakemake_names_an_unknown_key_first_and_prints_no_config(tmp_path):
    """Through Snakemake's own dry run: the first line of the config error names the key, and
    nothing of the merged config (its values) is printed."""
    override = tmp_path / "typo.yaml"
    override.write_text("trian:\n  epochs: 3\n")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", PRESET, str(override)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    lines = output.splitlines()
    header = lines.index("invalid config (workflow/schemas/config.schema.yaml describes every key):")
    assert lines[header + 1] == (
        "  <config>: unknown key 'trian' at the top level (did you mean 'train'?); known keys: "
        f"{sorted(SCHEMA['properties'])}"
    )
    assert "epochs" not in output and "learning_rates" not in output and "Traceback" not in output
