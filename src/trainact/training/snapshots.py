"""Snapshots of a training run and branches of its schedule.

A trunk run keeps its full state after the epochs ``TrainSettings.snapshot_epochs`` as
``snapshots/epoch<L>.pt`` (a checkpoint plus a ``branch`` record: the epoch, the learning rates up
to it and everything of the run's fingerprint but the schedule). A branch (``trainact train
--branch-from``) continues from such a snapshot with another schedule's later epochs, when the
two runs share all else (:func:`check_branch`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainact.run_files import snapshot_file
from trainact.training.checkpoints import load_checkpoint
from trainact.training.settings import SCHEDULE_KEYS
from trainact.training.train_settings import TrainSettings

log = logging.getLogger(__name__)


class SnapshotMismatch(ValueError):
    """A branch's settings, code or data differ from its trunk's beyond the schedule's tail."""


def snapshot_path(out_dir: str | os.PathLike, epoch: int) -> Path:
    """Where a run keeps its state after ``epoch`` (``TrainSettings.snapshot_epochs``)."""
    return Path(out_dir) / snapshot_file(epoch)


def shared_with_branches(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """What a trunk and its branches must share: everything but the schedule (the learning rates
    up to the branch point are compared on their own, :func:`check_branch`)."""
    return {k: v for k, v in fingerprint.items() if k not in SCHEDULE_KEYS}


def branch_record(epoch: int, settings: TrainSettings, fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The ``branch`` entry of the snapshot after ``epoch``."""
    return {
        "epoch": epoch,
        "learning_rates": settings.learning_rates_until(epoch),
        "shared": shared_with_branches(fingerprint),
    }


def check_branch(
    branch_from: str | os.PathLike, settings: TrainSettings, fingerprint: Mapping[str, Any]
) -> dict[str, Any]:
    """The snapshot at ``branch_from`` when this run may continue from it; raises
    :class:`SnapshotMismatch` naming what differs (settings, code, data, the schedule so far)."""
    snapshot = load_checkpoint(branch_from)
    if snapshot is None or "branch" not in snapshot:
        raise SnapshotMismatch(f"{branch_from}: no snapshot of a trunk run there")
    branch_epoch = snapshot["branch"]["epoch"]
    shared, theirs = shared_with_branches(fingerprint), snapshot["branch"]["shared"]
    differing = sorted(k for k in set(shared) | set(theirs) if shared.get(k) != theirs.get(k))
    if differing:
        raise SnapshotMismatch(f"{branch_from}: the trunk was run with other {', '.join(differing)}")
    if snapshot["branch"]["learning_rates"] != settings.learning_rates_until(branch_epoch):
        raise SnapshotMismatch(
            f"{branch_from}: the trunk's learning rates for epochs 1-{branch_epoch} "
            f"{snapshot['branch']['learning_rates']} are not this schedule's "
            f"{settings.learning_rates_until(branch_epoch)}"
        )
    if branch_epoch > settings.epochs:
        raise SnapshotMismatch(
            f"{branch_from}: epoch {branch_epoch} lies past train.epochs = {settings.epochs}"
        )
    return snapshot


def without_snapshot_gaps(
    checkpoint: dict[str, Any], out_dir: Path, snapshot_epochs: Sequence[int]
) -> dict[str, Any] | None:
    """The state to resume from so that every snapshot the run promises gets written.

    A workflow deletes a failed job's declared outputs, snapshots included, while the checkpoint
    (not an output) stays; resuming from it would never write the deleted snapshots again. So
    when a snapshot up to the checkpoint's epoch is missing, resume from the latest snapshot
    before the first gap (a full state like the checkpoint), or from the start if there is none.
    """
    done = len(checkpoint["history"])
    gaps = [e for e in snapshot_epochs if e <= done and not snapshot_path(out_dir, e).is_file()]
    if not gaps:
        return checkpoint
    earlier = [e for e in snapshot_epochs if e < gaps[0] and snapshot_path(out_dir, e).is_file()]
    log.warning(
        "%s: snapshot(s) after epoch(s) %s missing; resuming %s", out_dir, gaps,
        f"from the snapshot after epoch {earlier[-1]}" if earlier else "from the start",
    )  # fmt: skip
    return load_checkpoint(snapshot_path(out_dir, earlier[-1])) if earlier else None
