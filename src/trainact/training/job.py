"""Everything a job does before it touches a device, and what its summary records of it.

**Determinism on CUDA** (:func:`configure_determinism`): cuDNN benchmarking off, cuDNN's
deterministic algorithms, ``torch.use_deterministic_algorithms(True, warn_only=True)``
(an operation without a deterministic kernel warns instead of failing), cuBLAS' fixed workspace,
and TF32 off (convolutions and matrix products in full float32, as on the CPU). The settings go
into every run's ``summary.json``. The CPU is left as it is: its kernels are deterministic.

**The compile cache** (:func:`configure_compile_cache`): torch.compile's caches in a persistent
folder, so that jobs do not compile the activation kernels from scratch each time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from trainact.training.device import device_description, resolve_device

#: The persistent home of torch.compile's caches (Inductor's and Triton's), unless the user has
#: set ``TORCHINDUCTOR_CACHE_DIR`` / ``TRITON_CACHE_DIR`` themselves.
COMPILE_CACHE_ENV = "TRAINACT_COMPILE_CACHE"


def configure_determinism(device: torch.device) -> dict[str, Any]:
    """Make CUDA runs repeatable (see the module docstring); returns the settings in force."""
    if device.type == "cuda":
        # cuBLAS needs a fixed workspace for deterministic results; read when cuBLAS starts.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    return determinism_settings()


def determinism_settings() -> dict[str, Any]:
    """The settings that decide whether a GPU run repeats bit for bit, as they are now."""
    return {
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def compile_cache_dir() -> Path:
    """``$TRAINACT_COMPILE_CACHE``, else ``$XDG_CACHE_HOME/trainact/torch-compile`` (~/.cache)."""
    configured = os.environ.get(COMPILE_CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "trainact" / "torch-compile"


def configure_compile_cache() -> dict[str, str]:
    """Point Inductor's and Triton's caches at :func:`compile_cache_dir` unless the user set them.

    Their defaults live under the temporary folder, which many clusters make private to a job, so
    every job compiled the activation kernels from scratch (seconds to a minute each). Both caches
    write atomically, so concurrent jobs may share them. Call before the first compilation.
    """
    root = compile_cache_dir()
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(root / "inductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", str(root / "triton"))
    return {name: os.environ[name] for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")}


def job_device(policy: str | None = None) -> tuple[torch.device, dict[str, Any]]:
    """Everything a training job does before it touches a device: the compile cache, the device
    (:func:`resolve_device`), and determinism. Returns the device and what to record about it."""
    caches = configure_compile_cache()
    device = resolve_device(policy)
    return device, {
        "device": device_description(device),
        "determinism": configure_determinism(device),
        "compile_cache": caches["TORCHINDUCTOR_CACHE_DIR"],
    }


def run_record(run_info: Mapping[str, Any]) -> dict[str, Any]:
    """What a run's ``summary.json`` says of how it ran: ``run_info`` (:func:`job_device`), the
    activation kernels that ran since the run reset the report
    (:func:`trainact.nn.kernel_compiler.kernel_report`), and torch's version."""
    from trainact.nn.kernel_compiler import kernel_report

    return {**run_info, "activation_kernels": kernel_report(), "torch": torch.__version__}
