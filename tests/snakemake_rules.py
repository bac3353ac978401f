"""The workflow's rules as Snakemake sees them, for tests that check what the rules declare.

Snakemake parses the Snakefile (through its Python API, in a child process so that its logging
and working directory stay out of the test process) and each rule is described by what Snakemake
holds: its conda env file, its shell command, its resources and its params (a param that is a
function of the wildcards shows as ``<function>``).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_DUMP = r"""
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

configfiles = [Path(p) for p in sys.argv[1:]]
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    workflow = api.workflow(
        resource_settings=ResourceSettings(cores=1),
        config_settings=ConfigSettings(configfiles=configfiles),
        snakefile=Path("Snakefile"),
    )._workflow
    rules = {}
    for rule in workflow.rules:
        conda = rule.conda_env
        rules[rule.name] = {
            "snakefile": str(rule.snakefile),
            "conda": None if conda is None else str(Path(rule.snakefile).parent / str(conda)),
            "shell": rule.shellcmd,
            "resources": sorted(rule.resources),
            "resource_values": {
                name: "<function>" if value.is_evaluable() else value.value
                for name, value in rule.resources.items()
            },
            "params": {
                name: "<function>" if callable(value) else str(value)
                for name, value in rule.params._allitems()
            },
        }
print(json.dumps(rules))
"""


@dataclass(frozen=True)
class RuleView:
    """One rule as Snakemake holds it."""

    name: str
    snakefile: Path
    conda: Path | None
    shell: str | None
    resources: tuple[str, ...]
    params: dict[str, str]
    #: each resource's value (``<function>`` where it is a function of the job)
    resource_values: dict[str, object]


@functools.cache
def workflow_rules(*configfiles: str) -> dict[str, RuleView]:
    """Rule name -> what Snakemake holds for it, with the config (plus ``configfiles``) of the
    repository (rules that only some configs define, such as synthetic_archive, need theirs)."""
    result = subprocess.run(
        [sys.executable, "-c", _DUMP, *configfiles],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rules = json.loads(result.stdout.strip().splitlines()[-1])
    return {
        name: RuleView(
            name=name,
            snakefile=Path(info["snakefile"]),
            conda=None if info["conda"] is None else Path(info["conda"]).resolve(),
            shell=info["shell"],
            resources=tuple(info["resources"]),
            params=info["params"],
            resource_values=info["resource_values"],
        )
        for name, info in rules.items()
    }
