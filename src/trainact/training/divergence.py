"""A diverged run: its record, its message, and whether its job fails.

A run whose training loss turns non-finite stops with its outputs complete: the history's last
row is marked ``diverged``, ``model.pt`` holds the weights of the last good epoch (the start
when it was the first), and ``summary.json`` says so in its ``diverged`` record
(:func:`diverged_record`; ``null`` for a run that did not diverge).

Whether the job then fails is the divergence policy, :data:`DIVERGENCE_POLICIES`: ``result``
(exit 0: a diverged run is a result, the workflow goes on and the report lists it) or ``fail``
(exit :data:`DIVERGED_EXIT_CODE`). The training commands take it as ``--on-divergence``, default
``$TRAINACT_ON_DIVERGENCE`` (:data:`DIVERGENCE_ENV`) or ``fail``. The workflow sets the variable
from the config's ``on_divergence`` in every job's environment (workflow/rules/common.smk), not
in a param or the command: it changes no file a job writes, only its exit status, so switching
it reruns nothing.

Torch-free: the workflow imports it while it is parsed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: ``result``: the job exits 0 after a divergence; ``fail``: it exits :data:`DIVERGED_EXIT_CODE`.
DIVERGENCE_POLICIES = ("result", "fail")
#: Environment variable with the default of the training commands' ``--on-divergence``.
DIVERGENCE_ENV = "TRAINACT_ON_DIVERGENCE"
#: The policy of a command run by hand without the variable: a divergence is an error.
DEFAULT_DIVERGENCE_POLICY = "fail"
#: The exit status of a job whose run diverged under the ``fail`` policy.
DIVERGED_EXIT_CODE = 3
#: The ``--on-divergence`` help of every command that trains.
DIVERGENCE_HELP = (
    "result: exit 0 when a loss goes non-finite (the run keeps its outputs, marked diverged); "
    f"fail: exit {DIVERGED_EXIT_CODE} (default ${DIVERGENCE_ENV}, else {DEFAULT_DIVERGENCE_POLICY})"
)


def default_divergence_policy() -> str:
    """``$TRAINACT_ON_DIVERGENCE`` or :data:`DEFAULT_DIVERGENCE_POLICY`."""
    return os.environ.get(DIVERGENCE_ENV) or DEFAULT_DIVERGENCE_POLICY


def divergence_exit_code(policy: str, diverged: bool) -> int:
    """The exit status of a job after its runs ended: 0, or :data:`DIVERGED_EXIT_CODE` when a
    run diverged under the ``fail`` policy."""
    if policy not in DIVERGENCE_POLICIES:
        raise ValueError(f"divergence policy {policy!r}: choose one of {list(DIVERGENCE_POLICIES)}")
    return DIVERGED_EXIT_CODE if diverged and policy == "fail" else 0


def diverged_record(history: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """``summary.json``'s ``diverged``: ``{"epoch", "lr", "weights_after_epoch"}`` of a history whose
    last row is marked ``diverged`` (``weights_after_epoch``: the last ``ok`` epoch, whose weights
    ``model.pt`` holds; 0 = the start), else ``None``."""
    if not history or history[-1].get("status") != "diverged":
        return None
    ok_epochs = [int(row["epoch"]) for row in history if row.get("status") == "ok"]
    return {
        "epoch": int(history[-1]["epoch"]),
        "lr": float(history[-1]["lr"]),
        "weights_after_epoch": ok_epochs[-1] if ok_epochs else 0,
    }


def diverged_message(out_dir: str | os.PathLike, record: Mapping[str, Any]) -> str:
    """The one line a diverged run logs: its folder, the epoch, the learning rate, and which
    weights ``model.pt`` holds."""
    weights = record["weights_after_epoch"]
    return (
        f"{Path(out_dir)}: the training loss became non-finite in epoch {record['epoch']} "
        f"(lr {record['lr']:g}); stopped; model.pt holds the weights "
        + (f"after epoch {weights}" if weights else "of the start")
        + " (summary.json: diverged)"
    )
