"""The device policy: which device a job runs on, and why a GPU cannot be used.

``--device`` of every training command (default ``$TRAINACT_DEVICE`` or ``auto``): ``auto`` takes a
CUDA GPU when torch can use one, else Apple's MPS, else the CPU; ``cuda`` insists on a GPU;
``cpu`` the CPU; ``cuda:N`` or ``mps`` exactly that device. Under ``auto`` and ``cuda``, a machine
that has an NVIDIA GPU which torch cannot use (typically a driver older than the CUDA build of the
torch wheel) is an error that says why and how to fix it, instead of hours of training on the CPU:
:func:`cuda_diagnosis`. A job that gets ``cuda`` takes one GPU slot
(:func:`trainact.training.gpu_slots.claim_gpu`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import torch

from trainact.training import gpu_slots

#: The device policies; ``cuda:N`` and ``mps`` are accepted too.
DEVICE_POLICIES = ("auto", "cuda", "cpu")
#: Environment variable with the default of every command's ``--device``.
DEVICE_ENV = "TRAINACT_DEVICE"
#: The ``--device`` help of every command that trains.
DEVICE_HELP = (
    f"auto (a usable GPU, else the CPU; the default, or ${DEVICE_ENV}) | cuda (a GPU or an error) "
    "| cpu | cuda:N | mps"
)
#: PyTorch's wheels for older drivers (README, "Which torch wheel for which driver").
CUDA12_INDEX = "https://download.pytorch.org/whl/cu126"


class DeviceUnavailable(ValueError):
    """The requested device cannot be used; the message says why and what to do (a ValueError,
    so that the commands report it as a one-line error)."""


def default_device_policy() -> str:
    """``$TRAINACT_DEVICE`` or ``auto``."""
    return os.environ.get(DEVICE_ENV) or "auto"


def nvidia_driver_version() -> str | None:
    """The NVIDIA kernel driver's version (``"550.54.15"``) when this machine has one loaded."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        text = ""
    match = re.search(r"Kernel Module(?: for \S+)?\s+(\d+(?:\.\d+)+)", text)
    if match:
        return match.group(1)
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20, check=False,
            ).stdout  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        return lines[0] if lines else None
    return None


def nvidia_gpu_visible() -> bool:
    """Whether this process is meant to see an NVIDIA GPU: a driver is loaded, a GPU device file
    exists, and ``CUDA_VISIBLE_DEVICES`` does not hide them all (``""`` or ``-1``)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    has_device_file = any(Path("/dev").glob("nvidia[0-9]*"))
    return has_device_file and nvidia_driver_version() is not None


def cuda_diagnosis() -> str:
    """Why torch cannot use this machine's NVIDIA GPU, and the fix."""
    built = torch.version.cuda
    driver = nvidia_driver_version() or "unknown"
    if built is None:
        return (
            f"this torch ({torch.__version__}) is a CPU-only build, but the machine has an NVIDIA "
            f"GPU (driver {driver}); install a CUDA build, e.g. pip install torch "
            f"--index-url {CUDA12_INDEX} (README, 'Which torch wheel for which driver')"
        )
    try:
        torch.cuda.init()
        reason = "torch.cuda.is_available() is False"
    except Exception as exc:  # the driver's own words, e.g. "found no NVIDIA driver" or too old
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return (
        f"the machine has an NVIDIA GPU (driver {driver}) but torch {torch.__version__}, built for "
        f"CUDA {built}, cannot use it ({reason}). A driver older than the CUDA build is the usual "
        f"cause (CUDA 13 needs driver >= 580, CUDA 12 >= 525): update the driver, or install the "
        f"CUDA 12 build of the same torch: pip install torch=={torch.__version__.split('+')[0]} "
        f"--index-url {CUDA12_INDEX} (README, 'Which torch wheel for which driver'). "
        f"To train on the CPU anyway, pass --device cpu or set {DEVICE_ENV}=cpu"
    )


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def resolve_device(name: str | None = None) -> torch.device:
    """The device of policy ``name`` (default :func:`default_device_policy`); see the module
    docstring. ``cuda`` (also under ``auto``) claims one GPU slot for the rest of the process.
    Raises :class:`DeviceUnavailable`, with the reason, when the device cannot be used."""
    name = name or default_device_policy()
    if name in ("auto", "cuda"):
        if torch.cuda.is_available():
            return gpu_slots.claim_gpu()
        if nvidia_gpu_visible():
            raise DeviceUnavailable(cuda_diagnosis())
        if name == "cuda":
            raise DeviceUnavailable(
                "device 'cuda' requested but this machine has no NVIDIA GPU that torch can see "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); use --device auto or cpu"
            )
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceUnavailable(
            f"unknown device {name!r} ({exc}); use one of {', '.join(DEVICE_POLICIES)}, cuda:N or mps"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(
                cuda_diagnosis()
                if nvidia_gpu_visible()
                else f"device {name!r} requested but CUDA is not available"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailable(
                f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) are visible"
            )
        torch.cuda.set_device(device)
    return device


def device_description(device: torch.device) -> dict[str, Any]:
    """What a run records about its device: type, name (GPU model), and for a GPU its UUID and
    slot, the CUDA build and the driver."""
    info: dict[str, Any] = {"type": device.type}
    if device.type == "cuda":
        claimed = gpu_slots.claimed_slot()
        info.update(
            name=torch.cuda.get_device_name(device),
            index=device.index,
            gpu_id=claimed.get("gpu_id"),
            slot=claimed.get("slot"),
            cuda=torch.version.cuda,
            driver=nvidia_driver_version(),
        )
    else:
        info["name"] = device.type
    return info
