"""One device per job, several jobs per device: GPU slots.

A job that gets ``cuda`` takes one of the GPUs that it can see, by claiming a *slot*: an
exclusive ``flock`` on a file named after the GPU's UUID and a slot number in a node-local folder
(:func:`claim_slot`). Slots are tried slot-major (slot 0 of every GPU, then slot 1, ...), so
concurrent jobs spread over the GPUs first and then share them; a lock dies with its process, so a
crashed job frees its slot. How many jobs run at once is the scheduler's business (Snakemake's
``gpu_slots`` resource: GPUs x ``devices.jobs_per_gpu``, workflow/rules/common.smk); the slots only
decide *which* GPU each gets. Under SLURM every job sees only its own GPU, so it takes that one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import torch

log = logging.getLogger(__name__)

#: Node-local folder of the GPU slot locks (override for tests or odd clusters).
SLOT_DIR_ENV = "TRAINACT_GPU_SLOTS"


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


def claimed_slot() -> dict[str, Any]:
    """The GPU and slot this process claimed (``gpu_id``, ``slot``), empty before a claim."""
    return {key: _CLAIMED[key] for key in ("gpu_id", "slot") if key in _CLAIMED}
