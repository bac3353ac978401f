"""The run's settings beside the report: the settings file, its checksum, the settings that differ
from the paper config, and the rerun commands."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from trainact.report import paper_report as rp
from trainact.report import run_settings as rs

REPO = Path(__file__).resolve().parents[2]


def test_differences_name_each_changed_setting_with_both_values():
    paper = {
        "results": "results/paper",
        "train": {"epochs": 80, "learning_rates": [1e-3, 1e-4], "rho": 0.95},
        "dataset": {"train_per_class": None, "synthetic": None},
        "model": {"fourier": {}},
        "paper_only": {"x": 1},
    }
    run = {
        "results": "results/quick",
        "train": {"epochs": 5, "learning_rates": [0.001, 0.0001], "rho": 0.95},  # equal numbers
        "dataset": {"train_per_class": 1000, "synthetic": {"seed": 0}},
        "model": {"fourier": {}},
        "note": "a | b",
    }
    assert rs.differences(run, paper) == [
        rs.SettingDifference("results", "results/quick", "results/paper"),  # a string as it is
        rs.SettingDifference("train.epochs", "5", "80"),
        rs.SettingDifference("dataset.train_per_class", "1000", "null"),
        rs.SettingDifference("dataset.synthetic.seed", "0", rs.NOT_SET),  # a section one side lacks
        rs.SettingDifference("note", "a | b", rs.NOT_SET),
        rs.SettingDifference("dataset.synthetic", rs.NOT_SET, "null"),  # then the paper's own keys
        rs.SettingDifference("paper_only.x", rs.NOT_SET, "1"),
    ]
    assert rs.differences(paper, paper) == []
    # a list is one value: any change shows the whole list on both sides
    assert rs.differences({"s": [1, {"a": 2}]}, {"s": [1, {"a": 3}]}) == [
        rs.SettingDifference("s", '[1, {"a": 2}]', '[1, {"a": 3}]')
    ]


def test_settings_file_is_the_run_config_with_its_checksum(tmp_path):
    settings = {"train": {"epochs": 5, "learning_rates": [1e-3, 1e-4]}, "results": "results/quick", "x": None}
    path, digest = rs.write_settings(settings, tmp_path)
    assert path == tmp_path / rs.SETTINGS_FILE
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert yaml.safe_load(path.read_text()) == settings
    assert path.read_text().startswith(rs.SETTINGS_HEADER)
    # the same settings in another key order: the same bytes (the checksum names the settings)
    reordered = {
        "x": None,
        "results": "results/quick",
        "train": {"learning_rates": [1e-3, 1e-4], "epochs": 5},
    }
    assert rs.write_settings(reordered, tmp_path / "again")[1] == digest


def test_the_settings_file_reruns_the_run_it_came_from():
    """Given over config.yaml (Snakemake merges a --configfile into the config), the settings of a
    preset set every key to the preset's value: the merged config is the preset's run."""
    from snakemake.utils import validate

    from trainact import workflow_plan as plan
    from trainact.config_check import merged

    def resolved(*overrides):
        cfg = yaml.safe_load((REPO / "config.yaml").read_text())
        for override in overrides:
            cfg = merged(cfg, override)
        validate(cfg, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
        return plan.analysis_params(cfg)["paper_report"]["settings"]

    quick = resolved(yaml.safe_load((REPO / "workflow" / "presets" / "quick.yaml").read_text()))
    again = resolved(yaml.safe_load(rs.settings_yaml(quick)))
    assert again == quick and rs.differences(again, quick) == []
    assert {d.key for d in rs.differences(quick, resolved())} >= {"results", "train.epochs", "report.preset"}


def test_one_rerun_command_per_preset():
    presets = {p.stem for p in (REPO / "workflow" / "presets").glob("*.yaml")}
    assert set(rp.PRESET_COMMANDS) == presets | {"paper"}
    for name in presets:
        assert rp.PRESET_COMMANDS[name].endswith(f" --configfile workflow/presets/{name}.yaml")
    assert "--configfile" not in rp.PRESET_COMMANDS["paper"]
    commands = dict(rp.rerun_commands("results/quick/paper/settings.yaml"))
    assert commands["exactly this run (its settings file)"] == (
        "snakemake --cores all --resources gpu=1 --configfile results/quick/paper/settings.yaml"
    )
    assert commands["only this report (after its runs exist)"].endswith("settings.yaml paper_report")
