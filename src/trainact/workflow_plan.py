"""What the workflow asks for, planned from the config: the config slice every job carries in its
params, the sensitivity study's roots (which runs are reused, which are trained) and the run
files the analysis reads.

``workflow/rules/common.smk`` calls these while Snakemake parses the Snakefile, so this module
imports only the standard library and trainact's torch-free modules (names, layout, the config
check's merge, the schedule axis' planner). Every function takes the (validated, defaults filled
in) config as an argument and returns plain data; ``tests/workflow/test_workflow_plan.py`` tests
them.

A job's params hold exactly the config slice it uses, as canonical JSON (:func:`canonical`: sorted
keys, no whitespace), so a changed setting reruns exactly the jobs that use it, reordering keys in
a config file reruns nothing, and the slices of runs made before a key existed stay as they were.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from trainact import layout
from trainact.config_check import merged
from trainact.training import schedules

Config = Mapping[str, Any]
#: Top-level settings that change no file a job writes (where the jobs run; whether a diverged run
#: fails its job): they reach the jobs through the environment, and the report's params leave them out.
NO_RESULT_SETTINGS = ("devices", "on_divergence")


def canonical(value: Any) -> str:
    """The canonical JSON text of a config slice: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def url_basename(url: str) -> str:
    """File name of the archive at ``url`` (``archive.tar.gz`` when the URL names none)."""
    return os.path.basename(unquote(urlparse(url).path)) or "archive.tar.gz"


# ------------------------------------------------------------------------------ job slices


def model_slice(model: Config, size: str, activation: str) -> dict[str, Any]:
    """The part of the model config that one network uses: its own filters, the input
    preprocessing, and only its activation's settings (a ReLU network does not rerun when the
    Fourier settings change). The controls' keys join only when they change the network (init
    other than pytorch; relu_gain for the ReLU network, with the LC settings that give its gains'
    shape), so the slices of the runs made before those keys existed stay as they were."""
    used = {
        "hidden": model["hidden"],
        "filters": {size: model["filters"][size]},
        "preprocessing": model["preprocessing"],
    }
    if model["init"] != "pytorch":
        used["init"] = model["init"]
    if activation != "relu":
        used["impl"] = model["impl"]
        used[activation] = model[activation]
    elif model["relu_gain"]:
        used["relu_gain"] = True
        used["lc"] = {key: model["lc"][key] for key in ("candidates", "per_channel")}
    return used


def train_slice(model: Config, train: Config, size: str, activation: str) -> dict[str, Any]:
    """What one training job uses: its model slice and the train settings, without
    activation_lr_scale where the network has no activation parameters (a plain ReLU network
    trains the same under every scale, so its runs are reused)."""
    if activation == "relu" and not model["relu_gain"]:
        train = {k: v for k, v in train.items() if k != "activation_lr_scale"}
    return {"model": model_slice(model, size, activation), "train": dict(train)}


def trunk_slice(config: Config, size: str, activation: str) -> dict[str, Any]:
    """A schedule-axis trunk's slice: neither the tail nor the list of L (schedules.trunk_train)."""
    return {
        "model": model_slice(config["model"], size, activation),
        "train": schedules.trunk_train(config["train"], config["schedule_axis"]),
    }


def branch_slice(config: Config, size: str, activation: str, first_phase: int | str) -> dict[str, Any]:
    """The slice of the schedule-axis branch at L = ``first_phase``."""
    return {
        "model": model_slice(config["model"], size, activation),
        "train": schedules.branch_train(config["train"], config["schedule_axis"], int(first_phase)),
    }


def data_slices(config: Config) -> dict[str, dict[str, Any]]:
    """The slices of the download and prepare jobs (the download's is pinned by the md5)."""
    dataset = config["dataset"]
    prepare_keys = ("train_per_class", "test_per_class", "validation_per_class", "subset_seed")
    return {
        "download": {key: dataset[key] for key in ("url", "md5")},
        "prepare": {key: dataset[key] for key in prepare_keys},
    }


def section5_slices(config: Config) -> dict[str, dict[str, Any]]:
    """The slices of the autoencoder's pretraining and fine-tuning and of PSO (Section 5)."""
    ae, pso = config["autoencoder"], config["pso"]
    pretrain = {"model": model_slice(config["model"], ae["size"], ae["activation"]), "autoencoder": ae}
    return {
        "ae_pretrain": pretrain,
        "ae_finetune": {**pretrain, "train": config["train"]},
        "pso": {"model": model_slice(config["model"], pso["size"], pso["activation"]), "pso": pso},
    }


def claim_settings(config: Config) -> dict[str, Any]:
    """What trainact.analysis.claims.preview_reasons judges (the claims of aggregate, of the
    sensitivity study and of the schedule axis)."""
    return {"train": config["train"], "dataset": config["dataset"]}


def analysis_params(config: Config) -> dict[str, dict[str, Any]]:
    """The slices of aggregate, figures and paper_report: what they are told to expect (the
    Section 5 experiments run for every seed of the grid)."""
    exp = config["experiment"]
    grid = {
        "sizes": exp["sizes"],
        "activations": exp["activations"],
        "seeds": exp["seeds"],
        "autoencoder_seeds": exp["seeds"],
        "pso_seeds": exp["seeds"],
    }
    figures = {
        **grid,
        "model": config["model"],
        "activation_range": config["figures"]["activation_range"],
    }
    return {
        "aggregate": {**grid, "settings": claim_settings(config)},
        "figures": figures,
        # the whole config under the preset's name, but for the settings that change no result
        # (the report shows the devices the runs used, from provenance)
        "paper_report": {
            **figures,
            "preset": config["report"]["preset"],
            "settings": {key: value for key, value in config.items() if key not in NO_RESULT_SETTINGS},
        },
    }


# ------------------------------------------------------------------------ sensitivity study
#
# Every (initialisation, preprocessing) combination is a variant with its own model and train
# config (an entry's model and train settings merged over the config's). Per variant and
# activation the runs live under a root: the main results when the networks' settings
# (train_slice) equal the main grid's, else an earlier variant's root with equal settings, else
# <results>/sensitivity/<variant> (so nothing is trained twice).


@dataclass(frozen=True)
class Variant:
    """One combination of the sensitivity study."""

    name: str
    initialisation: str
    preprocessing: str
    model: dict[str, Any]
    train: dict[str, Any]


def sensitivity_variants(config: Config) -> list[Variant]:
    """The study's variants, initialisation-major (empty when the study is off)."""
    study = config["sensitivity"]
    if not study["enabled"]:
        return []
    return [
        Variant(
            name=f"{entry['name']}+{prep}",
            initialisation=entry["name"],
            preprocessing=prep,
            model=merged(merged(config["model"], entry.get("model", {})), {"preprocessing": prep}),
            train=merged(config["train"], entry.get("train", {})),
        )
        for entry in study["initialisations"]
        for prep in study["preprocessing"]
    ]


def sensitivity_roots(config: Config, variants: Iterable[Variant]) -> dict[str, dict[str, str]]:
    """Variant name -> activation -> the results root holding that variant's runs: the main
    results when its slices equal the main grid's, else the root of the first variant with equal
    slices, else its own folder."""
    out, study = config["results"], config["sensitivity"]
    variants = list(variants)

    def slices(model, train, activation):
        return [canonical(train_slice(model, train, size, activation)) for size in study["sizes"]]

    roots: dict[str, dict[str, str]] = {}
    for variant in variants:
        roots[variant.name] = {}
        for activation in study["activations"]:
            own = slices(variant.model, variant.train, activation)
            same = [out] if own == slices(config["model"], config["train"], activation) else []
            same += [
                roots[other.name][activation]
                for other in variants
                if other.name in roots
                and other.name != variant.name
                and slices(other.model, other.train, activation) == own
            ]
            roots[variant.name][activation] = same[0] if same else f"{out}/sensitivity/{variant.name}"
    return roots


@dataclass(frozen=True)
class SensitivityPlan:
    """The study as the workflow runs it."""

    #: the variants, in the config's order
    variants: list[Variant]
    #: variant name -> activation -> results root of its runs
    roots: dict[str, dict[str, str]]
    #: the name of the variant that is the main grid ("main" when none is: it joins the study)
    reference: str
    #: what the sensitivity job is told: name, initialisation, preprocessing, roots per variant
    spec_variants: list[dict[str, Any]]

    def settings(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """(model config, train config) of variant ``name``: what rule train_variant uses."""
        (variant,) = [v for v in self.variants if v.name == name]
        return variant.model, variant.train


def sensitivity_plan(config: Config) -> SensitivityPlan:
    """Plan the study: the variants, their roots, and the reference (the variant whose runs are
    all the main grid's, or the main grid joining as "main")."""
    out, activations = config["results"], config["sensitivity"]["activations"]
    variants = sensitivity_variants(config)
    roots = sensitivity_roots(config, variants)
    reference = [v.name for v in variants if all(roots[v.name][a] == out for a in activations)]
    spec = [
        {
            "name": v.name,
            "initialisation": v.initialisation,
            "preprocessing": v.preprocessing,
            "roots": roots[v.name],
        }
        for v in variants
    ]
    if variants and not reference:
        spec.insert(
            0,
            {
                "name": "main",
                "initialisation": "main",
                "preprocessing": config["model"]["preprocessing"],
                "roots": {a: out for a in activations},
            },
        )
    return SensitivityPlan(variants, roots, (reference or ["main"])[0], spec)


def sensitivity_params(config: Config, plan: SensitivityPlan) -> dict[str, Any]:
    """The sensitivity job's slice."""
    study = config["sensitivity"]
    return {
        "sizes": study["sizes"],
        "activations": study["activations"],
        "seeds": config["experiment"]["seeds"],
        "reference": plan.reference,
        "settings": claim_settings(config),
        "variants": plan.spec_variants,
    }


# ----------------------------------------------------------------------------- schedule axis


def schedule_axis_branches(config: Config) -> list[int]:
    """The L of the axis that are trained as branches of a trunk (every L whose schedule is not
    the train config's own); empty when the axis is off."""
    axis = config["schedule_axis"]
    return schedules.branch_points(config["train"], axis) if axis["enabled"] else []


def schedule_axis_points(config: Config) -> list[dict[str, Any]]:
    """Per L of first_phase_epochs: its root (the main results when the schedule is the train
    config's own, else <results>/schedule_axis/L<L>) and its train settings."""
    axis, out = config["schedule_axis"], config["results"]
    if not axis["enabled"]:
        return []
    branches = schedule_axis_branches(config)
    return [
        {
            "first_phase": L,
            "root": f"{out}/schedule_axis/L{L}" if L in branches else out,
            "train": schedules.branch_train(config["train"], axis, L),
        }
        for L in axis["first_phase_epochs"]
    ]


def schedule_axis_params(config: Config) -> dict[str, Any]:
    """The schedule_axis job's slice: its points and the paper's own schedule (the main grid)."""
    axis = config["schedule_axis"]
    return {
        "sizes": axis["sizes"],
        "activations": axis["activations"],
        "seeds": config["experiment"]["seeds"],
        "points": schedule_axis_points(config),
        "reference": {"root": config["results"], "train": config["train"]},
        "settings": claim_settings(config),
    }


# --------------------------------------------------------------------------------- run files


def train_file(root: str, name: str, size: str, activation: str, seed: int | str) -> str:
    """File ``name`` of the training run of (size, activation, seed) under ``root``."""
    return f"{root}/{layout.train_run_dir(size, activation, seed)}/{name}"


def sensitivity_inputs(config: Config, plan: SensitivityPlan) -> list[str]:
    """Every history the study reads (the main grid's where a variant reuses them)."""
    study, seeds = config["sensitivity"], config["experiment"]["seeds"]
    return sorted(
        {
            train_file(variant["roots"][a], "history.csv", size, a, seed)
            for variant in plan.spec_variants
            for a in study["activations"]
            for size in study["sizes"]
            for seed in seeds
        }
    )


def schedule_axis_inputs(config: Config) -> list[str]:
    """Every history and run summary the schedule axis reads: its branches' and the main grid's."""
    params, seeds = schedule_axis_params(config), config["experiment"]["seeds"]
    if not params["points"]:
        return []
    return sorted(
        {
            train_file(point["root"], name, size, a, seed)
            for point in params["points"] + [params["reference"]]
            for a in params["activations"]
            for size in params["sizes"]
            for seed in seeds
            for name in ("history.csv", "summary.json")
        }
    )


def result_inputs(config: Config) -> dict[str, list[str]]:
    """The histories the analysis reads, by kind: every training run of the grid and the
    autoencoder's baseline and PSO's reference (ordinary training runs, in the grid or not), the
    autoencoder's pretraining and fine-tuning, PSO."""
    out, exp = config["results"], config["experiment"]
    seeds = exp["seeds"]
    grid = [(s, a) for s in exp["sizes"] for a in exp["activations"]]
    section5 = [(config[k]["size"], config[k]["activation"]) for k in ("autoencoder", "pso")]
    models = list(dict.fromkeys(grid + section5))
    return {
        "train": [train_file(out, "history.csv", s, a, seed) for s, a in models for seed in seeds],
        "pretrain": [f"{out}/{layout.autoencoder_run_dir(seed)}/pretrain.csv" for seed in seeds],
        "finetune": [f"{out}/{layout.autoencoder_run_dir(seed)}/finetune/history.csv" for seed in seeds],
        "pso": [f"{out}/{layout.pso_run_dir(seed)}/history.csv" for seed in seeds],
    }


def grid_run_files(config: Config, names: Iterable[str], trainable_only: bool = False) -> list[str]:
    """Files ``names`` of every run of the grid (only the trainable activations' runs when
    ``trainable_only``): the run summaries of Table 1, the activations of the figures."""
    exp, names = config["experiment"], list(names)
    return [
        train_file(config["results"], name, s, a, seed)
        for s in exp["sizes"]
        for a in exp["activations"]
        if not (trainable_only and a == "relu")
        for seed in exp["seeds"]
        for name in names
    ]


def run_summaries(config: Config, study: SensitivityPlan) -> list[str]:
    """The summary.json of every training, fine-tuning and PSO run (their devices, for
    provenance)."""
    inputs = result_inputs(config)
    histories = inputs["train"] + inputs["finetune"] + inputs["pso"] + sensitivity_inputs(config, study)
    histories += [p for p in schedule_axis_inputs(config) if p.endswith("history.csv")]
    return sorted({os.path.join(os.path.dirname(path), "summary.json") for path in histories})
