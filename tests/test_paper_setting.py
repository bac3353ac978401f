"""The paper's setting (Liao, arXiv 2004.13271, Sections 2.2 and 5), pinned in one place.

Every number below is written out by hand, on purpose: changing the paper's setting in
config.yaml or in a dataclass default must fail here, so that the change is a visible, deliberate
act (edit this file too, and say why). Each value is read twice: from config.yaml, which the
workflow runs, and from the code's own defaults, which a direct call of the library uses.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml

from trainact.names import PAPER_FILTERS
from trainact.nn.fourier import Fourier
from trainact.nn.linear_combination import LinearCombination
from trainact.nn.models import DEFAULT_HIDDEN, build_model, parameter_count
from trainact.training.autoencoder import AutoencoderSettings
from trainact.training.pso import PSOSettings
from trainact.training.train_settings import TrainSettings

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())

FILTERS = {"small": [16, 32, 32], "middle": [32, 64, 64], "large": [48, 96, 96]}  # Section 2.2
HIDDEN = 128  # paper silent (Figure 1 is missing); one width for every size
TRAIN = {
    "epochs": 80,  # paper silent on the total; the schedule is defined past 60
    "batch_size": 128,  # paper silent
    "lr_boundaries": [20, 40, 60],  # eq. (1)
    "learning_rates": [1e-3, 1e-4, 1e-5, 1e-6],  # eq. (1)
    "rho": 0.95,  # the paper's RMSProp decay
    "eps": 1e-7,  # paper silent; Keras' default
}
FOURIER_RANK = 5  # "fixed to 5"
LC_CANDIDATES = ["relu", "sigmoid", "tanh", "linear"]  # eq. (7)'s four functions
PSO = {"size": "middle", "activation": "relu", "particles": 10, "generations": 50, "c1": 2.0, "c2": 2.0}
AUTOENCODER = {
    "size": "middle",  # Section 5.1: the middle-sized Fourier-CNN
    "activation": "fourier",
    "epochs_per_stage": 5,  # paper silent from here on
    "learning_rate": 1e-3,
    "batch_size": 128,
    "decoder": "conv_transpose",
    "rho": 0.95,
    "eps": 1e-7,
}


def test_filters_and_hidden_width():
    assert CONFIG["model"]["filters"] == FILTERS
    assert CONFIG["model"]["hidden"] == HIDDEN
    assert {size: list(f) for size, f in PAPER_FILTERS.items()} == FILTERS
    assert DEFAULT_HIDDEN == HIDDEN
    for size, filters in FILTERS.items():
        model = build_model(size, "relu", {})
        assert list(model.filters) == filters and model.hidden == HIDDEN


def test_training_settings_and_schedule():
    assert {k: CONFIG["train"][k] for k in TRAIN} == TRAIN
    defaults = TrainSettings().as_dict()
    assert {k: defaults[k] for k in TRAIN} == TRAIN
    assert TrainSettings.from_params(CONFIG["train"]).as_dict() == {**defaults, "eval_batch_size": 1000}
    settings = TrainSettings()
    # eq. (1): 1e-3 for epochs 1-20, 1e-4 for 21-40, 1e-5 for 41-60, 1e-6 after
    expected = [1e-3] * 20 + [1e-4] * 20 + [1e-5] * 20 + [1e-6] * 20
    assert [settings.learning_rate(e) for e in range(1, 81)] == expected


def test_fourier_rank_and_lc_candidates():
    assert CONFIG["model"]["fourier"]["rank"] == FOURIER_RANK
    assert CONFIG["model"]["lc"]["candidates"] == LC_CANDIDATES
    assert inspect.signature(Fourier).parameters["rank"].default == FOURIER_RANK
    assert list(inspect.signature(LinearCombination).parameters["candidates"].default) == LC_CANDIDATES
    # what the config builds: every Fourier layer of rank 5, every LC layer over the four candidates
    model_cfg = {k: v for k, v in CONFIG["model"].items() if k != "filters"}
    fourier = build_model("small", "fourier", model_cfg)
    lc = build_model("small", "lc", model_cfg)
    fourier_layers = [m for m in fourier.modules() if isinstance(m, Fourier)]
    lc_layers = [m for m in lc.modules() if isinstance(m, LinearCombination)]
    assert len(fourier_layers) == len(lc_layers) == 4
    assert all(m.rank == FOURIER_RANK for m in fourier_layers)
    assert all(list(m.candidates) == LC_CANDIDATES for m in lc_layers)


def test_pso_settings():
    assert {k: CONFIG["pso"][k] for k in PSO} == PSO
    defaults = PSOSettings().as_dict()
    assert {k: defaults[k] for k in PSO} == PSO


def test_autoencoder_settings():
    assert {k: CONFIG["autoencoder"][k] for k in AUTOENCODER} == AUTOENCODER
    defaults = AutoencoderSettings().as_dict()
    assert {k: defaults[k] for k in AUTOENCODER} == AUTOENCODER


def readme_parameter_counts() -> dict[tuple[str, str], int]:
    """The ``params`` column of the README's bench table (e.g. ``small   relu   81,290``)."""
    pattern = re.compile(r"^(small|middle|large)\s+(relu|fourier|lc)\s+(\d{1,3}(?:,\d{3})+)\s", re.M)
    text = (ROOT / "README.md").read_text()
    return {(size, act): int(n.replace(",", "")) for size, act, n in pattern.findall(text)}


# By hand, for the ReLU CNNs (3x3 convs with bias, 4x4 spatial after three 2x2 pools, hidden 128):
# small: 3*16*9+16 + 16*32*9+32 + 32*32*9+32 + 512*128+128 + 128*10+10 = 81,290
HAND = {("small", "relu"): 81_290, ("middle", "relu"): 188_810, ("large", "relu"): 323_978}


def test_readme_parameter_counts_are_the_models():
    counts = readme_parameter_counts()
    assert len(counts) == 9, counts
    assert {k: counts[k] for k in HAND} == HAND
    for (size, activation), expected in counts.items():
        assert parameter_count(build_model(size, activation, {})) == expected, (size, activation)
    # the trainable activations add 4 layers x (A, omega, 5 a_n, 5 b_n) = 48 or 4 x 4 weights = 16
    for size in FILTERS:
        assert counts[(size, "fourier")] - counts[(size, "relu")] == 4 * (2 + 2 * FOURIER_RANK)
        assert counts[(size, "lc")] - counts[(size, "relu")] == 4 * len(LC_CANDIDATES)


@pytest.mark.parametrize("size", sorted(FILTERS))
def test_hand_count_of_the_relu_networks(size):
    c1, c2, c3 = FILTERS[size]
    convs = (3 * c1 + c1 * c2 + c2 * c3) * 9 + c1 + c2 + c3
    dense = c3 * 4 * 4 * HIDDEN + HIDDEN + HIDDEN * 10 + 10
    assert convs + dense == HAND[(size, "relu")]


def schema_leaf_defaults(schema: dict, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    """Path -> default of every schema value that is not itself a mapping of settings."""
    found = {}
    if "default" in schema and "properties" not in schema:
        found[path] = schema["default"]
    for key, sub in schema.get("properties", {}).items():
        found.update(schema_leaf_defaults(sub, (*path, key)))
    return found


def test_schema_defaults_are_config_yaml_values():
    """The schema's defaults (which fill in what a preset leaves out) cannot drift from
    config.yaml (what the paper preset runs)."""
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    defaults = schema_leaf_defaults(schema)
    assert len(defaults) > 40
    differ = {}
    for path, default in defaults.items():
        value = CONFIG
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if path[:2] != ("dataset", "synthetic") and value != default:
            differ[".".join(path)] = (default, value)
    assert differ == {}


def test_config_downloads_the_official_archive_by_its_published_md5():
    """The md5 lives in cifar.py (the download's default, provenance's check) and in config.yaml
    (what the workflow passes); they must be the same archive."""
    from trainact.data.cifar import OFFICIAL_MD5, OFFICIAL_URL

    assert (CONFIG["dataset"]["url"], CONFIG["dataset"]["md5"]) == (OFFICIAL_URL, OFFICIAL_MD5)


def test_paper_config_trains_on_every_training_image():
    """The paper trains on all 50,000 training images and validates on the test batch: no subset
    and no validation split held out (that split is for choices made by measurement)."""
    dataset = CONFIG["dataset"]
    assert dataset["train_per_class"] is None and dataset["test_per_class"] is None
    assert dataset["validation_per_class"] is None
    assert dataset["synthetic"] is None
