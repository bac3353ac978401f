"""The SLURM profile (workflow/profiles/slurm) on a real single-node SLURM cluster.

The first tests read the profile and the workflow's rules only (fast, run everywhere). The
tests marked ``slurm`` start a cluster on this machine with tests/slurm/start-cluster.sh (root
and Debian needed; it installs Debian's slurmctld, slurmd, slurm-client and munge when they are
missing), then run part of the smoke preset twice, locally and through the profile, in two
copies of the repository, and finally make one cluster job fail. The cluster is stopped (each
daemon by its PID) when the module's tests are done. Run them with ``pytest -m slurm``.

The profile is used the way README.md ("On a SLURM cluster") tells a user to: its EDIT
placeholders are filled in (this cluster's partition, no account) and, this being a cluster
without GPUs, ``gpu: 0`` and ``cpus_per_task`` replace the GPU request. This cluster has no
accounting database, so the status is polled with ``squeue`` (``--slurm-status-command``).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from snakemake_rules import workflow_rules

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
DEFAULT_PROFILE = REPO / "workflow" / "profiles" / "default" / "config.yaml"
CLUSTER_SCRIPTS = REPO / "tests" / "slurm"
SMOKE_PRESET = "workflow/presets/smoke.yaml"
PARTITION = "trainact"

# Keys of the default (local) profile that the SLURM profile deliberately leaves out: the
# local core count and the local one-GPU-job-at-a-time cap.
LOCAL_ONLY_KEYS = {"cores", "resources"}
# History columns that measure time, not results.
TIMING_COLUMNS = {"seconds", "images_per_s"}
# Part of the smoke preset: two training runs and PSO (three jobs of the GPU rules) after the
# synthetic archive and the prepared data: five jobs, a few seconds of work each.
SMOKE_RESULTS = yaml.safe_load((REPO / SMOKE_PRESET).read_text())["results"]
HISTORIES = [
    f"{SMOKE_RESULTS}/train/small-relu/seed0/history.csv",
    f"{SMOKE_RESULTS}/train/middle-relu/seed0/history.csv",
    f"{SMOKE_RESULTS}/pso/seed0/history.csv",
]
PREPARED = f"{SMOKE_RESULTS}/data/cifar10.npz"
RUN_TIMEOUT_S = 600


# --------------------------------------------------------------------------- profile, static


def gpu_rules() -> set[str]:
    """Rules whose resources ask for a GPU slot (``gpu_slots``), as Snakemake reads them."""
    return {name for name, rule in workflow_rules().items() if "gpu_slots" in rule.resources}


def load_profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def test_profile_asks_for_one_gpu_in_exactly_the_gpu_rules():
    profile = load_profile()
    assert profile["executor"] == "slurm"
    assert gpu_rules() >= {"train", "ae_pretrain", "ae_finetune", "pso"}
    assert set(profile["set-resources"]) == gpu_rules()
    for rule, resources in profile["set-resources"].items():
        assert resources["gpu"] == 1, rule
        assert resources["cpus_per_gpu"] >= 1, rule
        # cpus_per_task would win over cpus_per_gpu in the plugin's sbatch call.
        assert "cpus_per_task" not in resources, rule
        assert str(resources["slurm_partition"]).startswith("EDIT"), rule
    assert "cpus_per_task" not in profile["default-resources"]


def test_profile_asks_for_sigterm_before_the_time_limit_and_retries_a_failed_job():
    """The long jobs write their checkpoint at SIGTERM (trainact.training.interrupt): every
    job's sbatch asks for it 120 s before its time limit, sent to the job's steps, where the
    trainact process runs under srun (a ``B:`` prefix would signal only the batch shell); no
    rule's block replaces the option; and a failed job runs once more, resuming."""
    profile = load_profile()
    assert profile["default-resources"]["slurm_extra"] == "'--signal=TERM@120'"
    assert all("slurm_extra" not in resources for resources in profile["set-resources"].values())
    assert profile["retries"] == 1


def test_the_long_jobs_exec_trainact_so_that_the_signal_reaches_it_and_is_waited_for():
    """The GPU jobs (training, autoencoder, PSO) replace their shell with trainact (``exec``):
    a bash left as the parent dies at SIGTERM, and Snakemake and SLURM's step end while
    trainact still writes its checkpoint."""
    rules, long_jobs = workflow_rules(), gpu_rules()
    assert long_jobs >= {"train", "ae_pretrain", "ae_finetune", "pso"}
    for name in long_jobs:
        assert rules[name].shell.startswith("exec python -m trainact "), (name, rules[name].shell)


def test_profile_has_no_local_gpu_cap_and_the_default_profiles_rerun_settings():
    profile, local = load_profile(), yaml.safe_load(DEFAULT_PROFILE.read_text())
    # A global gpu limit would let one GPU job run at a time on the whole cluster.
    assert "resources" not in profile
    for key in set(local) - LOCAL_ONLY_KEYS:
        assert profile.get(key) == local[key], f"workflow/profiles/slurm lacks {key}: {local[key]!r}"


def test_profile_placeholders_are_named_in_the_readme():
    profile = load_profile()
    readme = (REPO / "README.md").read_text()
    placeholders = {
        key
        for resources in [profile["default-resources"], *profile["set-resources"].values()]
        for key, value in resources.items()
        if str(value).startswith("EDIT")
    }
    assert placeholders == {"slurm_partition", "slurm_account"}
    for key in placeholders:
        assert f"`{key}`" in readme or f"{key}`" in readme, key


# ------------------------------------------------------------------------------ the cluster


def cluster_profile(dest: Path, partition: str) -> Path:
    """The shipped profile, edited as the README says for this cluster: its partition, no
    account, and no GPUs (``gpu: 0``, one core per job so two jobs share the two-core node)."""
    profile = load_profile()
    for resources in [profile["default-resources"], *profile["set-resources"].values()]:
        resources.pop("slurm_account", None)
        resources["slurm_partition"] = partition
    for resources in profile["set-resources"].values():
        resources["gpu"] = 0
        del resources["cpus_per_gpu"]
        resources["cpus_per_task"] = 1
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def copy_repository(dest: Path) -> Path:
    """The working tree without its environment, results and Snakemake state."""
    shutil.copytree(
        REPO,
        dest,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "results",
            "resources",
            ".snakemake",
            "__pycache__",
            ".pytest_cache",
            "*.egg-info",
        ),
    )
    return dest


def clean_env() -> dict[str, str]:
    """This process's environment without SLURM_* variables (in case pytest runs in a job)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}


def snakemake_command(*args: str, overrides: tuple[str, ...] = ()) -> list[str]:
    """Snakemake on the smoke preset, plus config files that override it (one --configfile
    flag: a second flag would replace the first)."""
    return [sys.executable, "-m", "snakemake", "--configfile", SMOKE_PRESET, *overrides, *args]


def slurm_args(profile: Path) -> list[str]:
    return [
        "--workflow-profile",
        str(profile),
        # No accounting database here, so sacct cannot answer; squeue keeps finished jobs
        # for MinJobAge (1 h, tests/slurm/slurm.conf.in).
        "--slurm-status-command",
        "squeue",
        # The plugin waits 40 s before the first status check by default.
        "--slurm-init-seconds-before-status-checks",
        "2",
    ]


def submitted_jobs(output: str) -> dict[str, str]:
    """SLURM job id -> Snakemake job id, from the plugin's "submitted" lines."""
    found = re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output)
    return {slurm_id: job_id for job_id, slurm_id in found}


def job_stats(output: str) -> Counter:
    """Rule -> number of jobs, from the "Job stats" table Snakemake prints when it starts."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return Counter({rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)})


def squeue_lines(slurm_ids) -> list[str]:
    """``id|comment|state|partition|cpus|memory|elapsed`` of each job, finished ones too."""
    result = subprocess.run(
        ["squeue", "-h", "--states=all", "-o", "%i|%k|%T|%P|%C|%m|%M", "-j", ",".join(slurm_ids)],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(result.stdout.split("\n")[:-1], key=lambda line: int(line.split("|")[0]))


def rule_of_comment(comment: str) -> str:
    """The plugin passes ``--comment rule_<rule>[_wildcards_<values>]`` to sbatch."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def read_results(path: Path) -> list[dict[str, str]]:
    """Rows of a history file without its timing columns."""
    with open(path, newline="") as file:
        return [
            {key: value for key, value in row.items() if key not in TIMING_COLUMNS}
            for row in csv.DictReader(file)
        ]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running single-node cluster; yields its state directory."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM test starts slurmctld/slurmd and writes /etc/slurm: needs root")
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        pytest.skip("SLURM is not installed and there is no apt-get to install it")
    state = tmp_path_factory.mktemp("slurm-cluster")
    start = subprocess.run(
        [str(CLUSTER_SCRIPTS / "start-cluster.sh"), str(state), PARTITION],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if start.returncode == 3:
        pytest.skip(start.stderr.strip())
    stop = [str(CLUSTER_SCRIPTS / "stop-cluster.sh"), str(state)]
    if start.returncode != 0:
        subprocess.run(stop, timeout=120)
        pytest.fail(f"start-cluster.sh failed ({start.returncode}):\n{start.stderr}")
    try:
        yield state
    finally:
        subprocess.run(stop, timeout=120)


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The same part of the smoke preset run locally and through SLURM, at the same time."""
    base = tmp_path_factory.mktemp("slurm-runs")
    local_dir = copy_repository(base / "local")
    slurm_dir = copy_repository(base / "slurm")
    profile = cluster_profile(base / "profile", PARTITION)

    started = time.monotonic()
    with open(base / "local.log", "w") as local_log:
        local = subprocess.Popen(
            snakemake_command("--cores", "2", *HISTORIES),
            cwd=local_dir,
            stdout=local_log,
            stderr=subprocess.STDOUT,
            text=True,
            env=clean_env(),
        )
        try:
            slurm = subprocess.run(
                snakemake_command(*slurm_args(profile), *HISTORIES),
                cwd=slurm_dir,
                capture_output=True,
                text=True,
                env=clean_env(),
                timeout=RUN_TIMEOUT_S,
            )
            local.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if local.poll() is None:
                local.kill()
                local.wait()
    print(f"local and SLURM runs together: {time.monotonic() - started:.0f} s")
    local_output = (base / "local.log").read_text()
    slurm_output = slurm.stdout + slurm.stderr
    assert local.returncode == 0, local_output[-5000:]
    assert slurm.returncode == 0, f"{slurm_output[-5000:]}\ncluster logs: {cluster}"
    return {
        "local_dir": local_dir,
        "local_output": local_output,
        "slurm_dir": slurm_dir,
        "slurm_output": slurm_output,
        "profile": profile,
        "base": base,
    }


@pytest.mark.slurm
@pytest.mark.slow
def test_every_job_runs_through_sbatch(runs):
    output = runs["slurm_output"]
    expected = job_stats(runs["local_output"])
    assert expected == job_stats(output)
    assert {"train", "pso", "prepare"} <= set(expected)
    # Nothing ran on the submitting host.
    assert "localrule" not in output
    submitted = submitted_jobs(output)
    assert len(submitted) == sum(expected.values())
    lines = squeue_lines(submitted)
    print("\n".join(lines))
    fields = [line.split("|") for line in lines]
    assert sorted(slurm_id for slurm_id, *_ in fields) == sorted(submitted)
    assert Counter(rule_of_comment(comment) for _, comment, *_ in fields) == expected
    assert {state for _, _, state, *_ in fields} == {"COMPLETED"}
    assert {partition for *_, partition, _, _, _ in fields} == {PARTITION}


@pytest.mark.slurm
@pytest.mark.slow
def test_cluster_results_equal_local_results(runs):
    for history in HISTORIES:
        local = read_results(runs["local_dir"] / history)
        cluster = read_results(runs["slurm_dir"] / history)
        assert len(local) >= 2, history
        assert cluster == local, history


@pytest.mark.slurm
@pytest.mark.slow
def test_failed_cluster_job_is_reported_and_fails_the_run(runs):
    """dataset.train_per_class above the synthetic archive's images per class passes the
    config schema, but the prepare job rejects it on the node, twice (the profile retries a
    failed job once: a job stopped at its time limit resumes in its retry)."""
    synthetic = yaml.safe_load((REPO / SMOKE_PRESET).read_text())["dataset"]["synthetic"]
    override = runs["base"] / "too-many-images.yaml"
    override.write_text(yaml.safe_dump({"dataset": {"train_per_class": synthetic["train_per_class"] + 1}}))
    result = subprocess.run(
        snakemake_command(*slurm_args(runs["profile"]), PREPARED, overrides=(str(override),)),
        cwd=runs["slurm_dir"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=RUN_TIMEOUT_S,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-5000:]
    submitted = submitted_jobs(output)
    assert len(submitted) == 2, output[-5000:]  # the profile's `retries: 1` submits it once more
    assert "Error in rule prepare" in output
    for slurm_id in submitted:
        assert f"SLURM-job '{slurm_id}' failed, SLURM status is: 'FAILED'" in output
    lines = squeue_lines(list(submitted))
    print(*lines, sep="\n")
    assert [line.split("|")[1:3] for line in lines] == [["rule_prepare", "FAILED"]] * 2
    # The job's own error reaches the user (show-failed-logs prints the job's log).
    job_log = (runs["slurm_dir"] / SMOKE_RESULTS / "logs" / "prepare.log").read_text()
    assert job_log.strip().splitlines()[-1] in output
