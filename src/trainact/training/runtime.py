"""Where and how a job runs: the device policy, one device per job, seeds, determinism, evaluation.

Training, the autoencoder and PSO share this module (and nothing of each other), so editing the
trainer does not rerun PSO.

**Device policy** (``--device`` of every training command, default ``$TRAINACT_DEVICE`` or
``auto``): ``auto`` takes a CUDA GPU when torch can use one, else Apple's MPS, else the CPU;
``cuda`` insists on a GPU; ``cpu`` the CPU; ``cuda:N`` or ``mps`` exactly that device. Under
``auto`` and ``cuda``, a machine that has an NVIDIA GPU which torch cannot use (typically a driver
older than the CUDA build of the torch wheel) is an error that says why and how to fix it, instead
of hours of training on the CPU: :func:`cuda_diagnosis`.

**One device per job, several jobs per device.** A job that gets ``cuda`` takes one of the GPUs
that it can see, by claiming a *slot*: an exclusive ``flock`` on a file named after the GPU's UUID
and a slot number in a node-local folder (:func:`claim_slot`). Slots are tried slot-major (slot 0
of every GPU, then slot 1, ...), so concurrent jobs spread over the GPUs first and then share
them; a lock dies with its process, so a crashed job frees its slot. How many jobs run at once is
the scheduler's business (Snakemake's ``gpu_slots`` resource: GPUs x ``devices.jobs_per_gpu``,
workflow/rules/common.smk); the slots only decide *which* GPU each gets. Under SLURM every job
sees only its own GPU, so it takes that one.

**Determinism on CUDA** (:func:`configure_determinism`): cuDNN benchmarking off, cuDNN's
deterministic algorithms, ``torch.use_deterministic_algorithms(True, warn_only=True)``
(an operation without a deterministic kernel warns instead of failing), cuBLAS' fixed workspace,
and TF32 off (convolutions and matrix products in full float32, as on the CPU). The settings go
into every run's ``summary.json``. The CPU is left as it is: its kernels are deterministic.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)

#: The device policies; ``cuda:N`` and ``mps`` are accepted too.
DEVICE_POLICIES = ("auto", "cuda", "cpu")
#: Environment variable with the default of every command's ``--device``.
DEVICE_ENV = "TRAINACT_DEVICE"
#: The ``--device`` help of every command that trains.
DEVICE_HELP = (
    f"auto (a usable GPU, else the CPU; the default, or ${DEVICE_ENV}) | cuda (a GPU or an error) "
    "| cpu | cuda:N | mps"
)
#: Node-local folder of the GPU slot locks (override for tests or odd clusters).
SLOT_DIR_ENV = "TRAINACT_GPU_SLOTS"
#: The persistent home of torch.compile's caches (Inductor's and Triton's), unless the user has
#: set ``TORCHINDUCTOR_CACHE_DIR`` / ``TRITON_CACHE_DIR`` themselves.
COMPILE_CACHE_ENV = "TRAINACT_COMPILE_CACHE"
#: Where a training, fine-tuning or PSO run records how it ran (:func:`run_record`) and its results.
SUMMARY_NAME = "summary.json"
#: PyTorch's wheels for older drivers (README, "Which torch wheel for which driver").
CUDA12_INDEX = "https://download.pytorch.org/whl/cu126"


class DeviceUnavailable(ValueError):
    """The requested device cannot be used; the message says why and what to do (a ValueError,
    so that the commands report it as a one-line error)."""


# ------------------------------------------------------------------------ the device policy


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
            return claim_gpu()
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
                cuda_diagnosis() if nvidia_gpu_visible() else f"device {name!r} requested but CUDA is not available"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailable(
                f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) are visible"
            )
        torch.cuda.set_device(device)
    return device


# -------------------------------------------------------------- one GPU per job, by slots


def slot_dir() -> Path:
    """Node-local folder of the slot locks: ``$TRAINACT_GPU_SLOTS`` or a per-user folder in /tmp."""
    configured = os.environ.get(SLOT_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"trainact-gpu-slots-{os.getuid()}"


def _slot_file(directory: Path, device_id: str, slot: int | str) -> Path:
    """The lock file of ``slot`` of a device (``slot="*"``: a glob pattern for all of them)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", device_id)
    return directory / f"{safe}.slot{slot}.lock"


def claim_slot(device_ids: Sequence[str], directory: Path) -> tuple[int, int, IO[str]]:
    """Claim the first free slot, slot-major: ``(index into device_ids, slot, open lock file)``.

    The lock is held while the returned file stays open (the caller keeps it for the life of the
    process); the kernel releases it when the process ends, however it ends. Never blocks: with
    more jobs than slots, a job takes a higher slot (the scheduler is meant to prevent that).
    """
    if not device_ids:
        raise ValueError("no devices to claim a slot on")
    directory.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        for index, device_id in enumerate(device_ids):
            handle = open(_slot_file(directory, device_id, slot), "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            return index, slot, handle
        slot += 1


def slot_holders(device_ids: Sequence[str], directory: Path) -> list[int]:
    """How many slots of each device are held now (by any process, including this one)."""
    counts = []
    for device_id in device_ids:
        held = 0
        for path in directory.glob(_slot_file(directory, device_id, "*").name):
            with open(path, "a+") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(handle, fcntl.LOCK_UN)
                except BlockingIOError:
                    held += 1
        counts.append(held)
    return counts


def gpu_ids() -> list[str]:
    """A stable identity per visible GPU: its UUID (the same GPU under any CUDA_VISIBLE_DEVICES)."""
    ids = []
    for index in range(torch.cuda.device_count()):
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        ids.append(f"GPU-{uuid}" if uuid is not None else f"index{index}")
    return ids


_CLAIMED: dict[str, Any] = {}


def claim_gpu() -> torch.device:
    """This process's GPU, claimed once (:func:`claim_slot` over :func:`gpu_ids`) and made current."""
    if "device" not in _CLAIMED:
        ids = gpu_ids()
        index, slot, handle = claim_slot(ids, slot_dir())
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
        _CLAIMED.update(device=device, slot=slot, lock=handle, gpu_id=ids[index])
        log.info(
            "using %s (%s, %s; job slot %d of this GPU on this node)",
            device, torch.cuda.get_device_name(device), ids[index], slot,
        )  # fmt: skip
    return _CLAIMED["device"]


def device_description(device: torch.device) -> dict[str, Any]:
    """What a run records about its device: type, name (GPU model), and for a GPU its UUID and
    slot, the CUDA build and the driver."""
    info: dict[str, Any] = {"type": device.type}
    if device.type == "cuda":
        info.update(
            name=torch.cuda.get_device_name(device),
            index=device.index,
            gpu_id=_CLAIMED.get("gpu_id"),
            slot=_CLAIMED.get("slot"),
            cuda=torch.version.cuda,
            driver=nvidia_driver_version(),
        )
    else:
        info["name"] = device.type
    return info


# --------------------------------------------------------------------- determinism, caches


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


# ------------------------------------------------------------------------- seeds, RNG state


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (model initialisation happens after this)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(device: torch.device | None = None) -> dict[str, Any]:
    """Python's, NumPy's and torch's CPU random state, and the CUDA state of ``device`` if a GPU."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Mapping[str, Any], device: torch.device | None = None) -> None:
    """Restore :func:`rng_state`. The states must be CPU tensors (load checkpoints to the CPU:
    ``torch.set_rng_state`` refuses a state that ``map_location`` moved to a GPU). A CUDA state
    goes to ``device`` when that is a GPU, and is dropped otherwise (a run resumed on the CPU)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and device is not None and device.type == "cuda":
        cuda_state = state["cuda"]
        if isinstance(cuda_state, (list, tuple)):  # older checkpoints: every GPU's state
            cuda_state = cuda_state[0]
        torch.cuda.set_rng_state(cuda_state.cpu(), device)


# ---------------------------------------------------------------------------- evaluation


def evaluate(model: nn.Module, dataset, batch_size: int) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on a whole :class:`DeviceDataset`."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=dataset.device)
    correct = torch.zeros((), dtype=torch.int64, device=dataset.device)
    with torch.no_grad():
        for images, labels in dataset.batches(batch_size, shuffle=False):
            logits = model(images)
            loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
            correct += (logits.argmax(1) == labels).sum()
    model.train(was_training)
    n = len(dataset)
    return loss_sum.item() / n, correct.item() / n
