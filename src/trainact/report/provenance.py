"""What a reproduction ran on: dataset checksum, hardware, package versions, git commit, wall times.

:func:`collect` returns one JSON-ready dict that the report shows in its "What was reproduced
and on what" section. Wall times come from the Snakemake ``benchmark:`` files of the rules:
tab-separated, a header row whose first column is ``s`` (wall-clock seconds), one row per
repetition. Put them at ``<benchmarks>/<rule>/<wildcards>.tsv``: the first folder level names
the rule group in the report.

Hardware is that of the machine running this command, which under SLURM is a CPU node; the
devices the runs actually used come from each training run's ``summary.json`` (written by
:func:`trainact.training.train.save_results`: device, GPU model, CUDA and driver, determinism settings,
the activation kernels that ran, how the training steps ran), grouped by :func:`run_devices`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainact.analysis.results import json_ready
from trainact.data.cifar import OFFICIAL_MD5
from trainact.files import file_md5, write_text_atomic

PACKAGES = ("trainact", "torch", "torchvision", "numpy", "pandas", "matplotlib", "jinja2", "snakemake")


def dataset_info(path: Path) -> dict[str, Any]:
    """Checksums of the dataset file: its own md5, and for a prepared ``.npz`` the md5 of the
    archive it was prepared from (``source_md5``), compared with the official archive's md5."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file is missing: {path}")
    info: dict[str, Any] = {"path": str(path), "bytes": path.stat().st_size, "md5": file_md5(path)}
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as prepared:
            source = str(prepared["source_md5"]) if "source_md5" in prepared.files else None
    else:
        source = info["md5"]
    info["source_md5"] = source
    info["official_md5"] = OFFICIAL_MD5
    info["source_matches_official"] = None if source is None else source == OFFICIAL_MD5
    return info


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def _memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def hardware_info() -> dict[str, Any]:
    """CPU model, logical cores, memory, and the CUDA GPUs torch sees (``[]`` without CUDA)."""
    import torch

    gpus = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "gpus": gpus,
        "cuda": torch.version.cuda if gpus else None,
        "platform": platform.platform(),
    }


def package_versions() -> dict[str, str]:
    """Python and the versions of the installed packages the reproduction depends on."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_info(repo: Path | None = None) -> dict[str, Any]:
    """``HEAD`` commit and whether the working tree has uncommitted changes ("unknown"/None
    outside a git repository or without git)."""
    cwd = Path(repo) if repo is not None else Path.cwd()

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain") if commit else None
    return {"commit": commit or "unknown", "dirty": None if status is None else bool(status)}


def read_benchmarks(directory: Path) -> list[dict[str, Any]]:
    """Every Snakemake benchmark file under ``directory``: name, rule group, mean wall seconds.

    ``group`` is the first folder below ``directory`` (the file stem for files directly in it).
    Raises ``ValueError`` naming a file whose header does not start with ``s``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"benchmark folder is missing: {directory}")
    entries = []
    for path in sorted(directory.rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        if frame.columns.empty or frame.columns[0] != "s":
            raise ValueError(
                f"{path}: not a Snakemake benchmark file "
                f"(first column {list(frame.columns[:1])}, expected 's')"
            )
        relative = path.relative_to(directory).with_suffix("")
        entries.append(
            {
                "benchmark": relative.as_posix(),
                "group": relative.parts[0],
                "seconds": float(pd.to_numeric(frame["s"], errors="coerce").mean()),
                "repeats": int(len(frame)),
            }
        )
    return entries


def wall_times(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per rule group: number of jobs and total wall seconds (sorted by group)."""
    groups: dict[str, dict[str, Any]] = {}
    for entry in entries:
        group = groups.setdefault(entry["group"], {"group": entry["group"], "jobs": 0, "seconds": 0.0})
        group["jobs"] += 1
        group["seconds"] += entry["seconds"]
    return [groups[name] for name in sorted(groups)]


def _device_label(device: Any) -> str:
    """``NVIDIA H200 (CUDA 13.0, driver 580.65)`` for a GPU, ``cpu`` for the CPU; summaries of
    older runs hold a plain string."""
    if not isinstance(device, dict):
        return str(device)
    if device.get("type") != "cuda":
        return str(device.get("name") or device.get("type"))
    details = [f"CUDA {device['cuda']}" if device.get("cuda") else None,
               f"driver {device['driver']}" if device.get("driver") else None]  # fmt: skip
    extra = ", ".join(d for d in details if d)
    return f"{device.get('name', 'GPU')}" + (f" ({extra})" if extra else "")


def _kernels_label(kernels: Any) -> str:
    """Which implementation of the trainable activations ran (see trainact.nn.kernel_compiler)."""
    if not isinstance(kernels, dict):
        return "not recorded"
    used = kernels.get("implementations") or []
    label = " + ".join(used) if used else "none (ReLU)"
    if kernels.get("compile_failure"):
        label += f" (compilation failed: {kernels['compile_failure']})"
    if kernels.get("pool_extension_failure"):
        label += f" (C++ max-pool build failed: {kernels['pool_extension_failure']})"
    return label


def _determinism_label(device: Any, settings: Any) -> str:
    """Whether a run repeats bit for bit: the CPU's kernels do; on a GPU, the settings decide."""
    if not isinstance(device, dict):
        return "not recorded"
    if device.get("type") != "cuda":
        return "deterministic (CPU)"  # nothing to set
    if not isinstance(settings, dict):
        return "not recorded"
    if settings.get("cudnn_deterministic") and not settings.get("cudnn_benchmark"):
        tf32 = "TF32 on" if settings.get("tf32_matmul") or settings.get("tf32_cudnn") else "TF32 off"
        return f"deterministic ({tf32})"
    return "torch defaults"


def _step_label(record: Any) -> str:
    """How the training steps ran (``summary.json``'s ``train_step``, written by
    :mod:`trainact.training.graph_step`): CUDA graphs, the static-buffer step run eagerly, or the
    ordinary step, and why the graphs were given up if they were."""
    if not isinstance(record, dict):
        return "not recorded"
    label = {"cuda_graph": "CUDA graphs", "static": "static buffers", "ordinary": "ordinary"}.get(
        record.get("mode"), str(record.get("mode"))
    )
    if record.get("fallback"):
        label += f" (graphs given up: {record['fallback']})"
    return label


def run_devices(summaries: list[Path]) -> list[dict[str, Any]]:
    """The training runs grouped by device, activation kernels, determinism and training step:
    one row per group with its number of runs. A missing summary is an error naming it."""
    groups: dict[tuple[str, str, str, str], int] = {}
    for path in summaries:
        try:
            summary = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"run summary not found: {path}") from None
        device = summary.get("device")
        key = (
            _device_label(device),
            _kernels_label(summary.get("activation_kernels")),
            _determinism_label(device, summary.get("determinism")),
            _step_label(summary.get("train_step")),
        )
        groups[key] = groups.get(key, 0) + 1
    return [
        {"device": device, "kernels": kernels, "determinism": determinism, "step": step, "runs": runs}
        for (device, kernels, determinism, step), runs in sorted(
            groups.items(), key=lambda item: (-item[1], item[0])
        )
    ]


def collect(
    dataset: Path | None = None,
    benchmarks: Path | None = None,
    repo: Path | None = None,
    summaries: list[Path] | None = None,
) -> dict[str, Any]:
    """All provenance as one JSON-ready dict (sections without an input are ``None``)."""
    entries = read_benchmarks(benchmarks) if benchmarks is not None else None
    return json_ready(
        {
            "dataset": dataset_info(dataset) if dataset is not None else None,
            "hardware": hardware_info(),
            "packages": package_versions(),
            "git": git_info(repo),
            "benchmarks": entries,
            "wall_times": wall_times(entries) if entries is not None else None,
            "run_devices": run_devices(summaries) if summaries else None,
        }
    )


# --------------------------------------------------------------------------------------- CLI


def _cmd_provenance(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError

    try:
        info = collect(args.dataset, args.benchmarks, args.repo, args.summaries)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    write_text_atomic(args.out, json.dumps(info, indent=1))
    return 0


def register_cli(subparsers) -> None:
    parser = subparsers.add_parser(
        "provenance",
        help="dataset md5, hardware, package versions, git commit and rule wall times as JSON",
        description="Collect what the report's provenance section shows.",
    )
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--dataset", type=Path, default=None, help="prepared .npz or the CIFAR-10 archive")
    parser.add_argument(
        "--benchmarks", type=Path, default=None, help="folder of Snakemake benchmark .tsv files"
    )
    parser.add_argument("--repo", type=Path, default=None, help="git working tree (default: current folder)")
    parser.add_argument(
        "--summaries",
        type=Path,
        nargs="*",
        default=None,
        help="summary.json of every training run (their devices)",
    )
    parser.set_defaults(func=_cmd_provenance)
