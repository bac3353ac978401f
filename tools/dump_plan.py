"""Every job Snakemake would run for a config (as with --forceall), as JSON: rule, wildcards,
params, inputs, outputs, shell command and GPU resources, sorted. Two dumps compare a refactor of
the workflow: equal dumps mean equal params and commands, so nothing reruns.

    python tools/dump_plan.py [CONFIGFILE ...] > plan.json      (in the repository root)
"""

import json
import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings


def main(configfiles: list[str]) -> None:
    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[Path(p) for p in configfiles]),
            snakefile=Path("Snakefile"),
        )
        workflow_api.dag(DAGSettings(forceall=True))  # sets the DAG settings
        workflow = workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        rows = [
            {
                "rule": job.rule.name,
                "wildcards": dict(job.wildcards_dict),
                "params": {k: str(v) for k, v in job.params.items()},
                "output": sorted(map(str, job.output)),
                "input": sorted(map(str, job.input)),
                "shell": job.shellcmd if job.is_shell else None,
                "resources": {
                    k: str(v) for k, v in job.resources.items() if k in ("gpu_slots", "mem_mb", "runtime")
                },
            }
            for job in workflow.dag.jobs
        ]
    rows.sort(key=lambda r: (r["rule"], json.dumps(r["wildcards"], sort_keys=True)))
    json.dump(rows, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
