"""Seeds and random states: a job's start, and what a checkpoint saves to resume bit for bit."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch


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
