"""The trainer's training step over static buffers, captured as CUDA graphs on a GPU.

These networks are small: on a GPU a step's time is the CPU's time to launch its few hundred
kernels, not the kernels' work. A CUDA graph launches the whole step at once. What a graph
needs, the step here provides: every tensor it reads or writes lives at a fixed address
(the *static buffers*), and it never waits for the host.

* **Data.** The epoch's shuffled order is copied to the device once (as
  :meth:`trainact.data.loader.DeviceDataset.batch_indices` gives it, so the order is unchanged);
  before each step its batch's indices are copied (device to device) into the index buffer of
  the batch's size, and the step gathers the uint8 images and the labels into their buffers
  (``index_select(..., out=)``) and converts the images to float inside: the same operations
  as :meth:`~trainact.data.loader.DeviceDataset.gather`.
* **The step.** Forward, loss, backward, RMSProp, the epoch's running sums: those of
  :func:`trainact.training.step.classifier_step`, except that the gradients are zeroed in place
  (``zero_grad(set_to_none=False)``), so they keep their addresses. The running sums are the
  stepper's own :class:`~trainact.training.step.EpochTotals` (:meth:`TrainStepper.epoch_totals`).
* **RMSProp** runs with ``capturable=True`` on a GPU (its step counters on the device); the
  update itself is the same, the counter is not used by RMSProp's arithmetic. A checkpoint keeps
  the flag with the state; each stepper sets the flag its mode needs at the start of every epoch
  (:func:`set_capturable`), so a checkpoint written in one mode resumes in any other.
* **Graphs.** One per (learning rates, batch size), captured after :data:`WARMUP_STEPS` steps of
  that batch size run eagerly on a side stream (they are real training steps: the lazy
  initialisation, the compilation of the activation kernels and cuDNN's choices happen there).
  The learning rate is baked into the graph, so a new learning rate captures new graphs and
  releases those of the old one. The full batches and the epoch's short last batch have a
  graph each.
* **Fallback.** Any exception while warming up or capturing switches the run to the ordinary
  step (:func:`~trainact.training.step.classifier_step` on gathered batches) for good, with the
  reason; :meth:`TrainStepper.record` is what ``summary.json`` keeps as ``train_step``.

On the CPU the same static-buffer step runs eagerly (mode ``"static"``): it gives the weights,
losses and sums of the ordinary step bit for bit (``tests/training/test_graph_step.py``), which is
also the test of the graph's arithmetic. :class:`HostSyncCounter` shows that the step makes no
host synchronisation (what would make a capture fail) and launches the same operations every step.

The mode: ``$TRAINACT_TRAIN_STEP`` (:data:`STEP_MODE_ENV`) or the ``mode`` argument, one of
:data:`STEP_MODES`: ``auto`` (the default: graphs on a CUDA device, the static step elsewhere),
``cuda_graph``, ``static`` or ``ordinary`` (today's step, e.g. to rule the graphs out).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from trainact.training.step import EpochTotals, classifier_step

#: Environment variable choosing the training step's mode (default ``auto``).
STEP_MODE_ENV = "TRAINACT_TRAIN_STEP"
#: The modes: ``auto`` is ``cuda_graph`` on a CUDA device and ``static`` elsewhere.
STEP_MODES = ("auto", "cuda_graph", "static", "ordinary")
#: Eager steps of a batch size (on a side stream) before its first graph is captured.
WARMUP_STEPS = 3


def step_mode(requested: str | None, device: torch.device) -> str:
    """The mode a run on ``device`` steps in: ``requested`` (else ``$TRAINACT_TRAIN_STEP``, else
    ``auto``) with ``auto`` resolved. Raises ValueError for an unknown mode."""
    requested = requested or os.environ.get(STEP_MODE_ENV) or "auto"
    if requested not in STEP_MODES:
        raise ValueError(
            f"unknown training step mode {requested!r} (${STEP_MODE_ENV}); use one of {STEP_MODES}"
        )
    if requested == "auto":
        return "cuda_graph" if device.type == "cuda" else "static"
    return requested


def set_capturable(optimizer: torch.optim.Optimizer, capturable: bool) -> None:
    """Every parameter group's ``capturable`` flag, and the step counters where it wants them:
    on the parameter's device (float32, as ``load_state_dict`` puts them) when capturable, else
    on the host, as torch keeps them. Nothing changes when they are already so."""
    for group in optimizer.param_groups:
        if group.get("capturable", False) == capturable:
            continue
        group["capturable"] = capturable
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            step = state.get("step")
            if isinstance(step, Tensor):
                state["step"] = step.to(param.device, torch.float32) if capturable else step.cpu()
    # torch warns once when a capturable optimiser steps outside a capture: the warm-up does.
    optimizer._warned_capturable_if_run_uncaptured = True  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ the graphs


class GraphBackend(Protocol):
    """How graphs are made: CUDA's (:class:`CudaGraphs`), or a stand-in in the tests."""

    def warmup(self, step: Callable[[], None]) -> None:
        """Run ``step`` eagerly, as a warm-up before capture."""

    def capture(self, step: Callable[[], None]) -> Any:
        """Capture ``step``; returns an object whose ``replay()`` runs it."""


class CudaGraphs:
    """Warm-up on a side stream and capture with ``torch.cuda.graph`` (PyTorch's recipe)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._side: torch.cuda.Stream | None = None

    def warmup(self, step: Callable[[], None]) -> None:
        if self._side is None:
            self._side = torch.cuda.Stream(self.device)
        current = torch.cuda.current_stream(self.device)
        self._side.wait_stream(current)
        with torch.cuda.stream(self._side):
            step()
        current.wait_stream(self._side)

    def capture(self, step: Callable[[], None]) -> torch.cuda.CUDAGraph:
        graph = torch.cuda.CUDAGraph()
        # thread_local: another thread's CUDA calls (none today) do not invalidate the capture.
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            step()
        return graph


# --------------------------------------------------------------------------- the stepper


@dataclass
class _Buffers:
    """The static tensors of one batch size: the indices, the uint8 images, the labels."""

    index: Tensor
    images: Tensor
    labels: Tensor


@dataclass
class _Counts:
    graphs: int = 0
    graph_steps: int = 0
    eager_steps: int = 0
    warm: Counter[int] = field(default_factory=Counter)


class TrainStepper:
    """The training step of one run, built once (after the run's state is restored).

    Per epoch: ``totals = stepper.epoch_totals()`` (zeroed sums, the stepper's own), then
    ``stepper.step(index)`` for each of ``dataset.batch_indices(...)``; ``totals`` holds the
    epoch's sums. :meth:`record` says how the steps ran (``summary.json``'s ``train_step``).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        optimizer: torch.optim.Optimizer,
        dataset: Any,
        *,
        mode: str | None = None,
        backend: GraphBackend | None = None,
    ) -> None:
        self.model, self.loss_fn, self.optimizer, self.dataset = model, loss_fn, optimizer, dataset
        self.device = torch.device(dataset.device)
        self.requested = mode or os.environ.get(STEP_MODE_ENV) or "auto"
        self.mode = step_mode(mode, self.device)
        self.fallback: str | None = None
        if self.mode == "cuda_graph" and backend is None and self.device.type != "cuda":
            self._fall_back(f"no CUDA device ({self.device})", "static")
        self.backend = backend if backend is not None else CudaGraphs(self.device)
        self.totals = EpochTotals(self.device)
        self._buffers: dict[int, _Buffers] = {}
        self._graphs: dict[tuple[tuple[float, ...], int], Any] = {}
        self._captured_at: tuple[int, ...] = ()
        self._counts = _Counts()

    # -------------------------------------------------------------------- the public side

    def _capturable(self) -> bool:
        """Whether RMSProp must be capturable: graphs on a CUDA device (torch refuses it on the
        CPU, where the tests' stand-in graphs run)."""
        return self.mode == "cuda_graph" and self.device.type == "cuda"

    def epoch_totals(self) -> EpochTotals:
        """The running sums for a new epoch (zeroed in place: the graphs write into them), with
        the optimiser's ``capturable`` flag as this mode needs it."""
        set_capturable(self.optimizer, self._capturable())
        if self._graphs and self._addresses() != self._captured_at:
            self._graphs.clear()  # e.g. the optimiser's state was loaded anew: capture again
        self.totals.loss_sum.zero_()
        self.totals.correct.zero_()
        return self.totals

    def step(self, index: Tensor) -> None:
        """One training step on the images at ``index`` (device int64, a batch of
        :meth:`~trainact.data.loader.DeviceDataset.batch_indices`)."""
        if self.mode == "ordinary":
            self._ordinary_step(index)
            return
        buffers = self._buffers_for(index.shape[0])
        buffers.index.copy_(index, non_blocking=True)
        if self.mode == "static":
            self._static_step(buffers)
            self._counts.eager_steps += 1
        else:
            self._graph_step(buffers)

    def record(self) -> dict[str, Any]:
        """``{"mode", "requested", "fallback", "graphs", "graph_steps", "eager_steps"}``: the mode
        the steps ran in at the end (``cuda_graph``, ``static`` or ``ordinary``), the mode asked
        for, why the graphs were given up (``None`` if they were not), the graphs captured, and the
        steps replayed from a graph and run eagerly (warm-up, static or ordinary), in this process."""
        return {
            "mode": self.mode,
            "requested": self.requested,
            "fallback": self.fallback,
            "graphs": self._counts.graphs,
            "graph_steps": self._counts.graph_steps,
            "eager_steps": self._counts.eager_steps,
        }

    def record_since(self, earlier: dict[str, Any] | None) -> dict[str, Any]:
        """:meth:`record` of the whole run, given the ``earlier`` processes' (a checkpoint's):
        their counts added, their fallback kept if this process has none. A process that made
        no step (a finished run resumed to write its results again) reports ``earlier`` as it
        was, so its ``summary.json`` does not change."""
        now = self.record()
        if earlier is None:
            return now
        if now["graph_steps"] + now["eager_steps"] == 0:
            return dict(earlier)
        counts = {key: earlier.get(key, 0) + now[key] for key in ("graphs", "graph_steps", "eager_steps")}
        return {**now, **counts, "fallback": now["fallback"] or earlier.get("fallback")}

    # ----------------------------------------------------------------------- the step itself

    def _buffers_for(self, size: int) -> _Buffers:
        buffers = self._buffers.get(size)
        if buffers is None:
            images = self.dataset.images
            buffers = _Buffers(
                index=torch.zeros(size, dtype=torch.int64, device=self.device),
                images=torch.empty((size, *images.shape[1:]), dtype=images.dtype, device=self.device),
                labels=torch.empty(size, dtype=torch.int64, device=self.device),
            )
            self._buffers[size] = buffers
        return buffers

    def _static_step(self, buffers: _Buffers) -> None:
        """The step on the static buffers: what a graph captures, and what runs eagerly."""
        torch.index_select(self.dataset.images, 0, buffers.index, out=buffers.images)
        torch.index_select(self.dataset.labels, 0, buffers.index, out=buffers.labels)
        images = buffers.images.to(torch.float32).div_(255.0)
        logits = self.model(images)
        loss = self.loss_fn(logits, buffers.labels)
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        self.optimizer.step()
        self.totals.add(loss.detach(), buffers.labels.shape[0], logits.detach(), buffers.labels)

    def _addresses(self) -> tuple[int, ...]:
        """Where the tensors a graph reads and writes live: the parameters, their gradients and
        the optimiser's state. A graph replays at the addresses it was captured at, so a change
        (a ``load_state_dict`` of the optimiser replaces its state) must drop the graphs."""
        tensors = [*self.model.parameters(), *(p.grad for p in self.model.parameters())]
        tensors += [value for state in self.optimizer.state.values() for value in state.values()]
        return tuple(t.data_ptr() if isinstance(t, Tensor) else 0 for t in tensors)

    def _ordinary_step(self, index: Tensor) -> None:
        images, labels = self.dataset.gather(index)
        classifier_step(self.model, self.loss_fn, self.optimizer, images, labels, self.totals)
        self._counts.eager_steps += 1

    def _graph_step(self, buffers: _Buffers) -> None:
        size = buffers.index.shape[0]
        key = (tuple(float(group["lr"]) for group in self.optimizer.param_groups), size)
        graph = self._graphs.get(key)
        if graph is not None:
            graph.replay()
            self._counts.graph_steps += 1
            return
        stage = "warm-up"
        try:
            if self._counts.warm[size] < WARMUP_STEPS:
                self.backend.warmup(lambda: self._static_step(buffers))
                self._counts.warm[size] += 1
                self._counts.eager_steps += 1
                return
            stage = "capture"
            # A new learning rate: the old one's graphs are not replayed again.
            for old in [k for k in self._graphs if k[0] != key[0]]:
                del self._graphs[old]
            graph = self.backend.capture(lambda: self._static_step(buffers))  # runs nothing
            self._graphs[key] = graph
            self._captured_at = self._addresses()
            self._counts.graphs += 1
        except Exception as exc:  # noqa: BLE001 (any failure: the ordinary step takes over)
            self._fall_back(
                f"{stage} of the graph for batch size {size}, lr {key[0]}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}",
                "ordinary",
            )
            self._graphs.clear()
            set_capturable(self.optimizer, False)
            # The failed step did not update the weights (see the doc of _fall_back): run it.
            self._ordinary_step(buffers.index)
            return
        graph.replay()
        self._counts.graph_steps += 1

    def _fall_back(self, reason: str, mode: str) -> None:
        """Give the graphs up for ``mode``, for the rest of the run. A capture runs nothing, so a
        failed one leaves the weights as they were; a warm-up step fails before its optimiser
        step in all but pathological cases (an error in the running sums after it)."""
        self.fallback = reason
        self.mode = mode


def make_stepper(
    model: nn.Module,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    dataset: Any,
    *,
    mode: str | None = None,
) -> TrainStepper:
    """The run's :class:`TrainStepper` (the mode: ``mode``, else ``$TRAINACT_TRAIN_STEP``, else
    ``auto``)."""
    return TrainStepper(model, loss_fn, optimizer, dataset, mode=mode)


# ---------------------------------------------------------------------- host synchronisation

#: Operations that make the host wait for the device: a value read on the host (``.item()``,
#: ``bool()``, ``float()``), an output whose size depends on the data, a comparison answered on
#: the host. Copies from a device to the host are recognised by their tensors' devices.
SYNC_OPS = frozenset(
    {"_local_scalar_dense", "is_nonzero", "equal", "nonzero", "masked_select", "unique",
     "_unique", "_unique2", "unique_dim", "unique_consecutive", "bincount", "allclose",
     "repeat_interleave"}
)  # fmt: skip
_ALLOCATION_OPS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})


class HostSyncCounter(TorchDispatchMode):
    """Counts the aten operations that run inside it (those that launch a kernel on a device:
    not views, not bare allocations, as :class:`trainact.bench.profile.LaunchCounter` counts),
    and lists those that would make the host wait for the device (:data:`SYNC_OPS`, a boolean
    mask as an index, a copy from a device to the host).

    Attributes: ``ops`` (``{op: count}``), ``syncs`` (the synchronising ops, in order).
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.syncs: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._schema.name.removeprefix("aten::")
        if func.namespace != "aten" or func.is_view or name in _ALLOCATION_OPS:
            return out
        self.ops[str(func)] += 1
        if name in SYNC_OPS and not (name == "repeat_interleave" and kwargs.get("output_size")):
            self.syncs.append(str(func))
        elif name in ("index", "index_put", "index_put_", "_index_put_impl_") and _has_bool_index(args):
            self.syncs.append(f"{func} (boolean mask)")
        elif name in ("_to_copy", "copy_", "_copy_from") and _to_host(func, args, kwargs, out):
            self.syncs.append(f"{func} (device to host)")
        return out

    @property
    def total(self) -> int:
        """All the operations counted."""
        return sum(self.ops.values())


def _has_bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(isinstance(t, Tensor) and t.dtype == torch.bool for t in indices or ())


def _to_host(func, args, kwargs, out) -> bool:
    """Whether a copy goes from a non-CPU device to the CPU."""
    name = func._schema.name.removeprefix("aten::")
    if name == "copy_":
        destination, source = args[0], args[1]
    elif name == "_copy_from":
        source, destination = args[0], args[1]
    else:
        source, destination = args[0], out
    return (
        isinstance(source, Tensor)
        and isinstance(destination, Tensor)
        and source.device.type != "cpu"
        and destination.device.type == "cpu"
    )


@contextlib.contextmanager
def counting_host_syncs() -> Iterator[HostSyncCounter]:
    """``with counting_host_syncs() as counter: ...``: a :class:`HostSyncCounter` over the block."""
    with HostSyncCounter() as counter:
        yield counter
