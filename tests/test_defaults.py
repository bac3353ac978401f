"""One home per default: the config schema's defaults, ``config.yaml`` and the library agree.

Every default is written in three kinds of place: the JSON schema
(``workflow/schemas/config.schema.yaml``, whose defaults fill in a key a config leaves out),
``config.yaml`` (the paper's setting, which states most keys) and the library (the settings
dataclasses, the activations' and the model's keyword defaults, the data commands' defaults),
which a direct call or ``trainact <command>`` without the key uses. These tests compare them
key by key and name every key that differs. Where a difference is deliberate it is listed, with
the reason, in :data:`PYTHON_EXCEPTIONS` or :data:`CONFIG_EXCEPTIONS`; a listed exception that
no longer differs fails too, so the lists do not rot.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from torch import nn

from trainact.bench import throughput
from trainact.data import cifar, prepare
from trainact.names import ACTIVATIONS, PAPER_FILTERS, SIZES
from trainact.nn import models
from trainact.nn.factory import make_activation
from trainact.nn.fourier import Fourier
from trainact.nn.linear_combination import LinearCombination
from trainact.report.figures import FigureParams
from trainact.report.paper_report import ReportParams
from trainact.training import device as runtime
from trainact.training.autoencoder import AutoencoderSettings
from trainact.training.pso import PSOSettings
from trainact.training.settings import RMSPROP_EPS, RMSPROP_RHO
from trainact.training.train import TrainSettings

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())

#: Settings-dataclass fields that are no config key: the workflow passes them per job (the seed,
#: the device, the schedule axis' snapshots), not from the section.
NOT_CONFIG_FIELDS = {"seed", "device", "snapshot_epochs"}
#: Keyword arguments of the activations that are no key of their config section: the layer's
#: width (from the network), and impl (model.impl; the section's impl only overrides it, so the
#: schema gives it no default of its own).
NOT_CONFIG_KEYWORDS = {"num_channels", "impl"}

#: Keys whose library default deliberately differs from the schema's: key -> (library value,
#: schema value, why). Each must still differ exactly so.
PYTHON_EXCEPTIONS: dict[str, tuple[Any, Any, str]] = {
    # The library cannot know which config preset it reports; the workflow always passes
    # report.preset, so "custom" is seen only by a direct call of trainact paper-report.
    "report.preset": ("custom", "paper", "a report made outside the workflow is no preset's"),
}
#: Library defaults known to differ from the schema that another change is fixing: key -> why.
#: Their tests are expected to fail (xfail); none at present.
PENDING: dict[str, str] = {}
#: Keys that config.yaml deliberately sets to another value than the schema's default:
#: key -> (config value, schema value, why). None so far: config.yaml is the paper's setting and
#: the schema's defaults are the same setting.
CONFIG_EXCEPTIONS: dict[str, tuple[Any, Any, str]] = {}


def plain(value: Any) -> Any:
    """Tuples as lists (YAML has no tuples), recursively, so values compare as the config's."""
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def schema_defaults(node: Mapping[str, Any] = SCHEMA, prefix: str = "") -> dict[str, Any]:
    """``{dotted key: default}`` of every key the schema gives a default, but a section's own
    ``{}`` (its keys' defaults are listed instead)."""
    found = {}
    for key, prop in node.get("properties", {}).items():
        dotted = f"{prefix}{key}"
        if "default" in prop and not ("properties" in prop and prop["default"] == {}):
            found[dotted] = prop["default"]
        found.update(schema_defaults(prop, f"{dotted}."))
    return found


def section_keys(dotted: str) -> set[str]:
    """The keys of the schema's section ``dotted`` (e.g. ``model.fourier``)."""
    node = SCHEMA
    for part in dotted.split("."):
        node = node["properties"][part]
    return set(node["properties"])


def config_value(dotted: str) -> tuple[bool, Any]:
    """``(True, value)`` where config.yaml states ``dotted``, else ``(False, None)``."""
    node: Any = CONFIG
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def field_defaults(cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def keyword_defaults(function: Any) -> dict[str, Any]:
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not p.empty}


SETTINGS = {"train": TrainSettings, "autoencoder": AutoencoderSettings, "pso": PSOSettings}
ACTIVATION_CLASSES = {"model.fourier": Fourier, "model.lc": LinearCombination}


def python_defaults() -> dict[str, Any]:
    """``{dotted config key: the library's default}``, for every key the library has one for."""
    found: dict[str, Any] = {
        "dataset.url": cifar.OFFICIAL_URL,
        "dataset.md5": cifar.OFFICIAL_MD5,
        **{f"dataset.{key}": value for key, value in prepare.PREPARE_DEFAULTS.items()},
        "experiment.sizes": SIZES,
        "experiment.activations": ACTIVATIONS,
        "model.hidden": models.DEFAULT_HIDDEN,
        **{f"model.filters.{size}": filters for size, filters in PAPER_FILTERS.items()},
        # build_model's defaults where model_cfg leaves a key out
        "model.init": models.WEIGHT_INITS[0],
        "model.preprocessing": keyword_defaults(models.PaperCNN.__init__)["preprocessing"],
        "model.impl": make_activation("lc", 4, {}).impl,
        "model.relu_gain": not isinstance(make_activation("relu", 4, {}), nn.ReLU),
        "figures.activation_range": field_defaults(FigureParams)["activation_range"],
        "report.preset": field_defaults(ReportParams)["preset"],
    }
    for section, cls in ACTIVATION_CLASSES.items():
        for key, value in keyword_defaults(cls.__init__).items():
            if key not in NOT_CONFIG_KEYWORDS:
                found[f"{section}.{key}"] = value
    for section, cls in SETTINGS.items():
        for key, value in field_defaults(cls).items():
            if key not in NOT_CONFIG_FIELDS:
                found[f"{section}.{key}"] = value
    return found


PYTHON = python_defaults()
SCHEMA_DEFAULTS = schema_defaults()


def _marked(keys: Any) -> list[Any]:
    return [
        pytest.param(key, marks=pytest.mark.xfail(reason=PENDING[key], strict=False))
        if key in PENDING
        else key
        for key in sorted(keys)
    ]


@pytest.mark.parametrize("key", _marked(PYTHON))
def test_the_library_default_is_the_schema_default(key: str) -> None:
    assert key in SCHEMA_DEFAULTS, f"{key}: the library has a default, the schema none"
    library, schema = plain(PYTHON[key]), SCHEMA_DEFAULTS[key]
    if key in PYTHON_EXCEPTIONS:
        expected_library, expected_schema, why = PYTHON_EXCEPTIONS[key]
        assert (library, schema) == (expected_library, expected_schema), (
            f"{key}: listed as a deliberate difference ({why}) of library {expected_library!r} and "
            f"schema {expected_schema!r}, but they are {library!r} and {schema!r}"
        )
        return
    assert library == schema, f"{key}: library default {library!r}, schema default {schema!r}"


@pytest.mark.parametrize("key", sorted(k for k in SCHEMA_DEFAULTS if config_value(k)[0]))
def test_config_yaml_states_the_schema_default(key: str) -> None:
    _, value = config_value(key)
    schema = SCHEMA_DEFAULTS[key]
    if key in CONFIG_EXCEPTIONS:
        expected_config, expected_schema, why = CONFIG_EXCEPTIONS[key]
        assert (value, schema) == (expected_config, expected_schema), (
            f"{key}: listed as a deliberate difference ({why}), but config.yaml has {value!r} and "
            f"the schema {schema!r}"
        )
        return
    assert value == schema, f"{key}: config.yaml {value!r}, schema default {schema!r}"


def test_every_config_leaf_has_a_schema_default() -> None:
    """What config.yaml states, a config that leaves it out gets from the schema (but the keys
    inside a mapping the schema defaults as a whole, e.g. dataset.synthetic)."""

    def leaves(node: Mapping[str, Any], prefix: str = "") -> list[str]:
        found = []
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, Mapping) and dotted not in SCHEMA_DEFAULTS:
                found += leaves(value, f"{dotted}.")
            else:
                found.append(dotted)
        return found

    assert [key for key in leaves(CONFIG) if key not in SCHEMA_DEFAULTS] == []


@pytest.mark.parametrize("section", sorted(SETTINGS))
def test_a_settings_dataclass_has_exactly_its_sections_keys(section: str) -> None:
    """So that the key-by-key comparison covers every key: each field (but the per-job ones) is a
    key of the section, and each key of the section a field."""
    fields = {f.name for f in dataclasses.fields(SETTINGS[section])} - NOT_CONFIG_FIELDS
    keys = section_keys(section)
    assert (sorted(fields - keys), sorted(keys - fields)) == ([], []), "(fields no key, keys no field)"


@pytest.mark.parametrize("section", sorted(ACTIVATION_CLASSES))
def test_an_activations_keywords_are_its_sections_keys(section: str) -> None:
    keywords = set(inspect.signature(ACTIVATION_CLASSES[section].__init__).parameters) - {"self"}
    assert sorted(keywords - NOT_CONFIG_KEYWORDS) == sorted(section_keys(section) - NOT_CONFIG_KEYWORDS)


@pytest.mark.parametrize("key", ["rho", "eps"])
def test_rmsprop_rho_and_eps_have_one_value(key: str) -> None:
    """RMSProp's rho and eps are keys of two config sections (train, autoencoder: two optimisers),
    but one setting: the trainer's (TrainSettings), which the pretraining and the benchmark use."""
    value = getattr(TrainSettings(), key)
    homes = {
        "AutoencoderSettings": getattr(AutoencoderSettings(), key),
        "schema train": SCHEMA_DEFAULTS[f"train.{key}"],
        "schema autoencoder": SCHEMA_DEFAULTS[f"autoencoder.{key}"],
        "config.yaml train": CONFIG["train"][key],
        "config.yaml autoencoder": CONFIG["autoencoder"][key],
        "bench RMSPROP": throughput.RMSPROP[key],
        "training.settings": {"rho": RMSPROP_RHO, "eps": RMSPROP_EPS}[key],
    }
    assert {home: v for home, v in homes.items() if v != value} == {}, f"TrainSettings.{key} = {value!r}"


def test_the_device_policy_default_is_the_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.DEVICE_ENV, raising=False)
    assert runtime.default_device_policy() == SCHEMA_DEFAULTS["devices.policy"] == CONFIG["devices"]["policy"]


def test_the_exception_lists_name_compared_keys() -> None:
    assert sorted((set(PYTHON_EXCEPTIONS) | set(PENDING)) - set(PYTHON)) == []
    assert sorted(set(CONFIG_EXCEPTIONS) - set(SCHEMA_DEFAULTS)) == []
