"""Stopping at a signal with a checkpoint: SIGTERM (a SLURM time limit, ``kill``, a cancelled
job) and SIGINT (Ctrl-C) end the long jobs at their next safe point, their work saved.

The long jobs' commands (``trainact train``, ``ae-pretrain``, ``ae-finetune``, ``pso``) run under
:func:`exits_on_signal`: while they run, SIGTERM and SIGINT only record the signal
(:func:`handling_signals`; the previous handlers come back afterwards). The jobs look at
:func:`requested` at their safe points; there they write their checkpoint (the file and format
they write by time, :mod:`trainact.training.checkpoints`) and raise :class:`Interrupted`; the
command logs one line naming the signal and the checkpoint(s) and exits ``128 + signal number``
(143 for SIGTERM, 130 for SIGINT): a failure, so Snakemake reruns the job, which resumes.

Safe points, and what a checkpoint written there holds (the choice: no work is lost, and the
rerun ends bit for bit as the uninterrupted run):

* **Training** (:mod:`trainact.training.train`; a pack saves each network in progress):
  before every optimiser step. Stopped inside an epoch, the checkpoint records the position in
  it (the epoch, the steps done, the epoch's running loss and accuracy sums, its seconds so far,
  and the weights after the epoch before, which a divergence falls back to) with the weights,
  optimiser, random states and history of that moment. The epoch's order is a pure function of
  (seed, epoch), so the rerun skips the steps done and continues with the same sums: the same
  history and weights as an uninterrupted run. Stopped before an epoch's first step, the
  checkpoint is the one an epoch's end writes.
* **Autoencoder pretraining** (:mod:`trainact.training.autoencoder`): before every batch, the
  same way (position: stage, epoch, batches done, the running loss sum). Fine-tuning is training.
* **PSO** (:mod:`trainact.training.pso`): before every generation (one update and one fitness
  evaluation of the whole swarm); the checkpoint is the by-time one.

A job stops within one step, batch or generation of the signal (plus the checkpoint's write);
one that finishes its last step first completes normally (exit 0). A second signal while the
checkpoint is written is ignored (the process exits right after the write); one before the
safe point is reached (a job still loading data or compiling) stops the job at once, without a
checkpoint: a rerun resumes from the last one, and a write it interrupts leaves the previous
file whole (:func:`trainact.files.atomic_write`).

SLURM sends SIGTERM only at the time limit, with SIGKILL soon after; the workflow's SLURM profile
asks for it 120 s earlier (``--signal=TERM@120``, see ``workflow/profiles/slurm/config.yaml``).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

#: The signals a long job turns into a checkpoint and a non-zero exit.
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15, and so on."""
    return signal.Signals(signum).name


def exit_code(signum: int) -> int:
    """The shell's code for a process ended by ``signum``: 128 + its number (143 for SIGTERM)."""
    return 128 + signum


class Interrupted(Exception):
    """A job stopped at a signal: ``saved`` lists each checkpoint written (its path and where it
    stands, e.g. ``".../checkpoint.pt after step 120 of 390 of epoch 4"``); ``at_once`` when a
    second signal stopped it before a safe point, with nothing written. ``str()`` is the line
    the command logs."""

    def __init__(self, signum: int, saved: Sequence[str] = (), *, at_once: bool = False) -> None:
        self.signum, self.saved, self.at_once = signum, list(saved), at_once
        super().__init__(self.message())

    @property
    def exit_code(self) -> int:
        return exit_code(self.signum)

    def message(self) -> str:
        name, code = signal_name(self.signum), self.exit_code
        if self.at_once:
            return (
                f"received {name} again before a safe point: exiting ({code}) without writing a "
                f"checkpoint; a rerun resumes from the last one"
            )
        if not self.saved:
            return f"received {name} with no run in progress: nothing to checkpoint; exiting ({code})"
        written = "checkpoint written to " if len(self.saved) == 1 else "checkpoints written to "
        return f"received {name}: {written}{'; '.join(self.saved)}; exiting ({code}) so that a rerun resumes"


class StopBeforeStep(Exception):
    """Raised inside an epoch's loop at a safe point (a signal arrived): ``step`` steps of the
    epoch were done, with the epoch's running sums ``totals`` (on the device) after
    ``seconds``. The loop's owner writes the checkpoint and raises :class:`Interrupted`."""

    def __init__(self, step: int, totals: Any, seconds: float) -> None:
        super().__init__(f"stopped before step {step + 1}")
        self.step, self.totals, self.seconds = step, totals, seconds


#: The running sums of an epoch that a position records (training: both; pretraining: the loss).
RUNNING_SUMS = ("loss_sum", "correct")


@dataclass
class EpochSteps:
    """An epoch's steps still to run (:func:`epoch_steps`): ``done`` steps before them, the
    epoch's ``started`` time (``time.perf_counter()``, its seconds before a resume counted in)."""

    done: int
    started: float
    remaining: Iterator[Any]


def epoch_steps(order: Iterable[T], totals: Any, resume_at: Mapping[str, Any] | None = None) -> EpochSteps:
    """The batches of an epoch's ``order`` still to run, checked for a signal before each (the
    safe point): the loop of training's and pretraining's epochs. ``resume_at``, the position a
    checkpoint written inside the epoch recorded (``step``, ``seconds``, and running sums such as
    ``loss_sum`` and ``correct``), skips the steps done and copies its sums into ``totals`` (the
    epoch's running sums, on the device). Iterating raises :class:`StopBeforeStep` before a step
    when a signal was received (:func:`requested`)."""
    done, seconds = (resume_at["step"], resume_at["seconds"]) if resume_at is not None else (0, 0.0)
    for name in RUNNING_SUMS:
        if resume_at is not None and name in resume_at:
            getattr(totals, name).copy_(resume_at[name])
    started = time.perf_counter() - seconds

    def remaining() -> Iterator[T]:
        for step, item in enumerate(itertools.islice(order, done, None), start=done):
            if requested() is not None:
                raise StopBeforeStep(step, totals, time.perf_counter() - started)
            yield item

    return EpochSteps(done, started, remaining())


class _State:
    """The process's signal state: installed or not, the signal received, a final save running."""

    active = False
    received: int | None = None
    saving = False


def _record(signum: int, frame: Any) -> None:
    if _State.received is None:
        _State.received = signum
    elif not _State.saving:
        raise Interrupted(signum, at_once=True)


def requested() -> int | None:
    """The signal received while :func:`handling_signals` is active, else ``None``: a job checks
    this at its safe points (a plain read, cheap enough for every step)."""
    return _State.received


@contextlib.contextmanager
def handling_signals() -> Iterator[None]:
    """While active, SIGTERM and SIGINT are recorded for :func:`requested` instead of ending the
    process; the previous handlers are restored at the end. Does nothing outside the main thread
    (Python delivers signals there only) or when already active."""
    if _State.active or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in HANDLED_SIGNALS}
    _State.active, _State.received, _State.saving = True, None, False
    try:
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, _record)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _State.active, _State.received, _State.saving = False, None, False


def stop_with(save: Callable[[], Sequence[str]]) -> Interrupted:
    """Run ``save`` (it writes the checkpoint(s) and returns what it wrote, as
    :attr:`Interrupted.saved` lists them) with a further signal ignored, then return the
    :class:`Interrupted` to raise."""
    signum = requested()
    if signum is None:
        raise RuntimeError("stop_with() without a signal received")
    _State.saving = True
    try:
        saved = save()
    finally:
        _State.saving = False
    return Interrupted(signum, saved)


def exits_on_signal(command: Callable[..., int]) -> Callable[..., int]:
    """A long job's command (``func(args) -> exit status``) run under :func:`handling_signals`:
    :class:`Interrupted` is logged as one line and becomes its exit status (128 + the signal)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> int:
        with handling_signals():
            try:
                status = command(*args, **kwargs)
            except Interrupted as stop:
                log.warning("%s", stop)
                return stop.exit_code
            if requested() is not None:
                log.info("received %s after the last safe point; the job completed", signal_name(requested()))
            return status

    return run
