"""The run's settings as the report gives them: the settings file written beside the report, and
the settings that differ from the paper config (the report's Appendix A).

``settings.yaml`` (:data:`SETTINGS_FILE`) holds the full config of the run (what the workflow
gives ``trainact paper-report`` as ``settings``: every key with the schema's defaults filled in,
but ``devices``, which changes no result), as YAML that ``snakemake --configfile`` reads: given
over ``config.yaml`` it sets every key, so it reruns exactly this run. The report prints the
file's SHA-256 (:func:`write_settings`), so a printed report names the one file it came from.

The paper config is the repository's ``config.yaml`` with the schema's defaults (the workflow
gives it as ``paper_settings``); :func:`differences` lists each setting whose value differs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainact.files import write_text_atomic

SETTINGS_FILE = "settings.yaml"
#: The first lines of :data:`SETTINGS_FILE`: what it is and how to use it.
SETTINGS_HEADER = (
    "# The full config of this run (written by trainact paper-report beside the report; the\n"
    "# report prints this file's SHA-256). Every key is set, so\n"
    "#   snakemake --cores all --configfile <this file>\n"
    "# reruns exactly this run. Not included: devices (where the jobs ran; it changes no result).\n"
)
#: How a setting that one of the two configs lacks reads.
NOT_SET = "(not set)"


@dataclass(frozen=True)
class SettingDifference:
    """One setting whose value differs: its key path and both values as text."""

    key: str
    run: str
    paper: str


def flat_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as ``{"train.epochs": 80, ...}`` in insertion order; a list (or an empty
    mapping) is one value."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_settings(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def setting_text(value: Any) -> str:
    """A setting's value as the report prints it: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def differences(run: Mapping[str, Any], paper: Mapping[str, Any]) -> list[SettingDifference]:
    """The settings of ``run`` whose value differs from ``paper``'s, then those only ``paper``
    has, each by its key path (``train.epochs``); equal numbers (``1e-3`` and ``0.001``, ``1``
    and ``1.0``) do not differ."""
    flat_run, flat_paper = flat_settings(run), flat_settings(paper)
    found = []
    for key in [*flat_run, *(k for k in flat_paper if k not in flat_run)]:
        in_run, in_paper = key in flat_run, key in flat_paper
        if in_run and in_paper and flat_run[key] == flat_paper[key]:
            continue
        found.append(
            SettingDifference(
                key,
                setting_text(flat_run[key]) if in_run else NOT_SET,
                setting_text(flat_paper[key]) if in_paper else NOT_SET,
            )
        )
    return found


def settings_yaml(settings: Mapping[str, Any]) -> str:
    """The text of :data:`SETTINGS_FILE`: :data:`SETTINGS_HEADER`, then ``settings`` as YAML
    (keys sorted, so the same settings always give the same bytes)."""
    return SETTINGS_HEADER + yaml.safe_dump(
        json.loads(json.dumps(settings)), sort_keys=True, allow_unicode=True
    )


def write_settings(settings: Mapping[str, Any], out_dir: Path) -> tuple[Path, str]:
    """Write :data:`SETTINGS_FILE` into ``out_dir`` (atomically); returns its path and SHA-256."""
    text = settings_yaml(settings)
    path = write_text_atomic(Path(out_dir) / SETTINGS_FILE, text)
    return Path(path), hashlib.sha256(text.encode("utf-8")).hexdigest()
