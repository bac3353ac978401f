"""The workflow's config check: every bad value named with its key, before any job runs.

``workflow/rules/common.smk`` calls :func:`config_errors` when Snakemake parses the Snakefile
and stops with all the lines it returns. Two layers: the JSON schema
(``workflow/schemas/config.schema.yaml``, which also describes every key and gives its default),
then the checks that span several keys, which a schema does not express. Needs jsonschema (a
dependency of Snakemake), nothing of torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema

from trainact.names import AUTOENCODER_MODEL, PSO_MODEL
from trainact.training.settings import schedule_problems


def dotted(path: Any, root: str = "<config>") -> str:
    """``train.learning_rates.0`` for the path of a value inside the config (``root``: the
    empty path, the checked mapping itself)."""
    return ".".join(str(part) for part in path) or root


def schema_errors(cfg: Mapping[str, Any], schema: Mapping[str, Any], root: str = "<config>") -> list[str]:
    """One line per value that breaks the schema, naming the key and the value. An unknown key
    is named first, with the closest known key and the section's known keys, never the whole
    section (its "value"; :func:`unknown_key_lines`). ``root`` names ``cfg`` itself (a config
    section checked on its own: its name)."""
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: [str(p) for p in e.path])
    lines = []
    for error in errors:
        if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
            lines += unknown_key_lines(error.instance, error.schema, error.path, root)
        else:
            lines.append(f"{dotted(error.path, root)} = {error.instance!r}: {error.message}")
    return lines


def unknown_key_lines(
    section: Mapping[str, Any], section_schema: Mapping[str, Any], path: Any, root: str
) -> list[str]:
    """``<config>: unknown key 'trian' at the top level (did you mean 'train'?); known keys: [...]``
    (or ``model.fourier: unknown key 'rnak' (did you mean 'rank'?); ...``) for each key of
    ``section`` (at ``path`` under ``root``) that its schema does not know."""
    known = sorted(section_schema.get("properties", {}))
    where = dotted(path, root)
    top = " at the top level" if where == "<config>" else ""
    lines = []
    for key in sorted(set(section) - set(known), key=str):
        close = difflib.get_close_matches(str(key), known, n=1)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        lines.append(f"{where}: unknown key {key!r}{top}{guess}; known keys: {known}")
    return lines


def cross_key_errors(cfg: Mapping[str, Any]) -> list[str]:
    """Checks that span several keys: the learning-rate schedule, the validation split against
    the training images it is taken from, and the Section 5 networks (the aggregation and
    figures compare them with the paper's)."""
    train = cfg["train"]
    lines = [
        f"train.{key} = {value!r}: {why}"
        for key, value, why in schedule_problems(train["lr_boundaries"], train["learning_rates"])
    ]
    lines += validation_split_errors(cfg["dataset"])
    lines += schedule_axis_errors(cfg)
    for section, (size, activation) in (("autoencoder", AUTOENCODER_MODEL), ("pso", PSO_MODEL)):
        got = cfg[section]["size"], cfg[section]["activation"]
        if got != (size, activation):
            lines.append(
                f"{section}.size/activation = {got[0]}/{got[1]}: the aggregation and figures "
                f"support only the paper's {size}-{activation} here"
            )
    return lines


def schedule_axis_errors(cfg: Mapping[str, Any]) -> list[str]:
    """The schedule axis against the train config: its tail needs a learning rate per phase
    (:func:`trainact.training.schedules.check_axis` names the value)."""
    from trainact.training.schedules import check_axis

    axis = cfg.get("schedule_axis") or {}
    if not axis.get("enabled", False):
        return []
    try:
        check_axis(axis, cfg["train"]["learning_rates"])
    except ValueError as exc:
        return [str(exc)]
    return []


def validation_split_errors(dataset: Mapping[str, Any]) -> list[str]:
    """``dataset.validation_per_class`` must leave each class at least one training image: it
    must be less than ``train_per_class`` and the synthetic archive's images per class (the
    schema bounds it by the archive's 5000)."""
    held_out = dataset["validation_per_class"]
    if held_out is None:
        return []
    limits = {"dataset.train_per_class": dataset["train_per_class"]}
    if dataset["synthetic"]:
        limits["dataset.synthetic.train_per_class"] = dataset["synthetic"]["train_per_class"]
    return [
        f"dataset.validation_per_class = {held_out!r}: must be less than {key} = {limit}, "
        f"so that every class keeps training images"
        for key, limit in limits.items()
        if limit is not None and held_out >= limit
    ]


def merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in, nested mappings key by key (neither is changed)."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


#: The config sections a sensitivity variant may override (its settings merged over the config's).
VARIANT_SECTIONS = ("model", "train")


def sensitivity_errors(cfg: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Each sensitivity variant's ``model`` and ``train`` settings, merged over the config's, must
    be valid sections (the train schedule too), and the variants' names must differ."""
    entries = cfg["sensitivity"]["initialisations"]
    names = [entry["name"] for entry in entries]
    lines = [
        f"sensitivity.initialisations: the name {name!r} is used more than once"
        for name in sorted({n for n in names if names.count(n) > 1})
    ]
    for entry in entries:
        for section in VARIANT_SECTIONS:
            section_schema = {**schema["properties"][section], "$defs": schema.get("$defs", {})}
            settings = merged(cfg[section], entry.get(section, {}))
            problems = schema_errors(settings, section_schema, root=section)
            if section == "train" and not problems:
                problems = [
                    f"{key} = {value!r}: {why}"
                    for key, value, why in schedule_problems(
                        settings["lr_boundaries"], settings["learning_rates"]
                    )
                ]
            for line in problems:
                lines.append(f"sensitivity.initialisations.{entry['name']} (merged over {section}): {line}")
    return lines


def config_errors(
    cfg: dict[str, Any], schema: Mapping[str, Any], fill_defaults: Callable[[dict[str, Any]], None]
) -> list[str]:
    """Every problem of ``cfg``, one line each (empty when it is valid). When the schema holds,
    ``fill_defaults(cfg)`` fills in the schema's defaults (the workflow passes Snakemake's
    ``validate``) before the cross-key checks read them."""
    lines = schema_errors(cfg, schema)
    if lines:
        return lines
    fill_defaults(cfg)
    return cross_key_errors(cfg) + sensitivity_errors(cfg, schema)
