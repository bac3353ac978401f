"""Checkpoints of the long jobs (training, autoencoder pretraining, PSO): by time, on the CPU, and
never a dead end.

* **By time**: a job saves when :class:`CheckpointClock` says at least ``interval`` seconds
  (default 60, ``$TRAINACT_CHECKPOINT_INTERVAL``) have passed since its last save, and always
  after its last epoch or generation, so a slow network filesystem never dominates a fast GPU
  (PSO's swarm is 23 MB per generation). A hard kill loses at most about a minute of work.
* **Read on the CPU**: :func:`load_checkpoint` maps every tensor to the CPU, whatever device
  wrote it; ``load_state_dict`` then moves weights and optimizer state to the job's device. (With
  ``map_location=<gpu>`` the saved random-number state would land on the GPU too, and
  ``torch.set_rng_state`` refuses it: every resume on a GPU crashed.)
* **Valid only for the same run**: a checkpoint is resumed only when it was written under the
  same settings and model structure (``ConfigSection.checkpoint_fingerprint``), the same code
  and the same input files (:func:`run_identity`); any other is ignored and the job starts
  over. This is the one stale-checkpoint rule, whoever starts the job (a workflow rule or a
  user).
* **Never a dead end**: a checkpoint that cannot be read (truncated by a full disk, damaged) is
  renamed to ``<name>.damaged-<time>`` with a warning that names both files, and the job starts
  over, instead of failing the same way on every rerun.

Every write goes through :func:`trainact.files.atomic_write` (temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from trainact.files import atomic_write, file_digest
from trainact.sourcegraph import code_digest

log = logging.getLogger(__name__)


def run_identity(family: str, model_cfg: Mapping[str, Any], *inputs: str | os.PathLike) -> dict[str, str]:
    """What a job's checkpoint must have been written under, beyond its settings section (which
    ``ConfigSection.checkpoint_fingerprint`` holds): the code its command runs
    (:func:`trainact.sourcegraph.code_digest` of its command family, the digest the workflow's
    rules carry), the model config the network was built from (initialisation and all, which the
    network's structure does not show), and the sha256 of each input file, by file name. Other
    code, model settings or data since the checkpoint make it stale."""
    identity = {
        "code": code_digest(family),
        "model config": json.dumps(model_cfg, sort_keys=True, separators=(",", ":")),
    }
    identity.update({f"input {Path(path).name}": file_digest(path, "sha256") for path in inputs})
    return identity


#: Seconds between two checkpoints of a running job.
CHECKPOINT_INTERVAL_S = 60.0
INTERVAL_ENV = "TRAINACT_CHECKPOINT_INTERVAL"


def checkpoint_interval() -> float:
    """``$TRAINACT_CHECKPOINT_INTERVAL`` in seconds (0: after every epoch), else 60."""
    text = os.environ.get(INTERVAL_ENV)
    if not text:
        return CHECKPOINT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(f"{INTERVAL_ENV}={text!r}: must be a number of seconds >= 0")
    return value


class CheckpointClock:
    """Says when the next checkpoint is due: ``interval`` seconds after the last one (or start)."""

    def __init__(self, interval: float | None = None) -> None:
        self.interval = checkpoint_interval() if interval is None else float(interval)
        self.last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.interval

    def saved(self) -> None:
        self.last = time.monotonic()

    def save_if_due(
        self, path: str | os.PathLike, state: Callable[[], Mapping[str, Any]], *, force: bool = False
    ) -> bool:
        """Write ``state()`` to ``path`` (:func:`save_checkpoint`) when a checkpoint is due or
        ``force`` (the last epoch, an early stop); ``state`` is only built then. Returns whether
        it wrote one."""
        if not (force or self.due()):
            return False
        save_checkpoint(path, state())
        self.saved()
        return True


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> None:
    """Write ``state`` with ``torch.save``, atomically (:func:`save_torch`)."""
    save_torch(path, dict(state))


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save(obj)`` to ``path`` atomically, the same bytes for the same ``obj``: saved
    through a file object, torch names the archive's inner folder ``archive``, not after the
    temporary file (whose name is random), so a file written again holds the same bytes and
    Snakemake's content check sees no change."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)

    atomic_write(path, write)


def set_aside(path: str | os.PathLike) -> Path:
    """Rename ``path`` to ``<name>.damaged-<YYYYmmdd-HHMMSS>`` beside it; returns the new path."""
    path = Path(path)
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, target)
    return target


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any] | None:
    """The checkpoint at ``path`` with every tensor on the CPU, or ``None`` when there is none or
    it cannot be read (then it is set aside, with a warning naming it)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        # weights_only=False: the checkpoint holds Python's and NumPy's random states. Our own
        # file, written by this package; never load a checkpoint from an untrusted source.
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(checkpoint, dict):
            raise TypeError(f"expected a dict, found {type(checkpoint).__name__}")
    except Exception as exc:
        aside = set_aside(path)
        log.warning(
            "checkpoint %s cannot be read (%s: %s); moved it to %s and starting over",
            path, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", aside,
        )  # fmt: skip
        return None
    return checkpoint


def resumable_checkpoint(
    path: str | os.PathLike,
    fingerprint: Mapping[str, Any],
    *,
    progress: str,
    most: int,
    resume: bool = True,
    starting_over: str = "starting over",
    substitute: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
) -> dict[str, Any] | None:
    """The one resume rule: the checkpoint at ``path`` when the job may continue from it, else
    ``None`` (start over). It may when ``resume`` is set, it can be read (:func:`load_checkpoint`),
    it was written under the same ``fingerprint`` (settings, model structure, :func:`run_identity`)
    and its ``progress`` list (history rows) holds at most ``most`` entries (a run made shorter
    cannot continue past its end). ``substitute`` may replace a checkpoint of the same run
    before the length check (the trainer's missing snapshots), or return ``None`` to start over.
    A checkpoint of another run is ignored with a warning that ends in ``starting_over``.
    """
    checkpoint = load_checkpoint(path) if resume else None
    if checkpoint is None:
        return None
    if substitute is not None and checkpoint.get("fingerprint") == fingerprint:
        checkpoint = substitute(checkpoint)
        if checkpoint is None:
            return None
    if checkpoint.get("fingerprint") == fingerprint and len(checkpoint[progress]) <= most:
        return checkpoint
    log.warning("%s was written with other settings; %s", path, starting_over)
    return None
