"""What one training step *does*, counted instead of timed: ``python -m trainact bench --profile``.

Per network: the FLOPs of one training step and the device kernels it launches, by phase, with
the activation kernels compiled and eager, the same for one evaluation batch, and the step's
CPU-side cost on this machine. The counts do not depend on the machine; they are what a GPU time
estimate multiplies (README, "Speed"). The step counted is the trainer's own
(:func:`trainact.training.step.classifier_step`), so the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from trainact.bench.throughput import RMSPROP, check_choices
from trainact.data.cifar import IMAGE_SHAPE
from trainact.names import ACTIVATIONS, PAPER_FILTERS
from trainact.nn import kernels as _activations_module
from trainact.nn.models import build_model, parameter_count
from trainact.training.step import EpochTotals, classifier_step, rmsprop

# ------------------------------------------------------------------ per-step profile (counts)
#
# `trainact bench --profile`: what one training step *does*, independent of the machine: the
# FLOPs of its matrix products and convolutions, and the number of device kernels it launches.
# On a GPU these small networks are launch-bound (each kernel costs a few microseconds of CPU time
# to launch, however little work it does), so the launch count, not the FLOPs, sets the time per
# step; the README's "Speed" estimate multiplies these counts by a per-launch cost.
#
# How: the step runs on PyTorch's "meta" device (shapes and dtypes only, no arithmetic), so the
# full-size networks and batches cost nothing to count, and tensors that would live on the GPU
# (meta) are told apart from those that stay on the host (CPU: RMSProp's step counters). A
# TorchDispatchMode sees every aten operation after autograd has expanded it into forward and
# backward ops (the level at which PyTorch launches kernels); each one on a device tensor that
# does real work is counted as one launch. Excluded, because they launch no kernel:
#   * views and other metadata-only ops (``func.is_view``: view, t, detach, expand, slice,
#     unsqueeze, lift_fresh, ...): they return a new tensor header over the same memory;
#   * allocation-only ops (empty, empty_like, empty_strided, new_empty...): the CUDA caching
#     allocator hands out memory without a kernel;
#   * ops whose tensors are all on the CPU (RMSProp keeps ``step`` on the host unless
#     ``capturable``) and non-aten ops (the optimiser's profiler ``record_function`` markers).
# Each counted op is *at least* one launch: cuDNN may split one (convolution backward: a kernel
# for grad_input, one for grad_weight, one for grad_bias), and a foreach op launches one kernel
# per ~65k-element chunk group (one for these networks' parameters). So the counts are a floor.
#
# The trainable activations run their pointwise kernels inside custom autograd Functions through
# ``trainact.nn.kernels._run_kernel`` (one call per forward and one per backward of each
# activation layer; a conv stage's activation fused with its max-pool, ``trainact.nn.pool_kernels``,
# makes two of each: the activation's kernel, then the window selection or the scatter, which on
# the CPU run as a C++ extension and on the meta device as their torch-op form). While counting,
# that function is replaced by a counting one that runs the kernel eagerly: the ops inside are
# tallied apart, as the launches of impl "eager", and the call itself counts one launch, as impl
# "auto"/"compiled" on a GPU, where Inductor fuses each kernel function into one Triton kernel
# (the backward's reductions may need a second, split-reduction kernel; see ``kernel_calls`` to
# scale).

# Allocation without a kernel (the caching allocator); views are recognised by ``func.is_view``.
_ALLOCATION_OPS = frozenset(
    {"empty.memory_format", "empty_like.default", "empty_strided.default",
     "new_empty.default", "new_empty_strided.default"}
)  # fmt: skip
PROFILE_DEVICE = "meta"
PHASES = ("data", "forward", "backward", "optimizer", "bookkeeping")


class LaunchCounter(TorchDispatchMode):
    """Counts the aten ops that would launch a device kernel, per phase, and the bytes they touch.

    Attributes:
        launches: ``{phase: count}`` of ops outside the activation kernels.
        kernel_calls: ``{phase: count}`` of activation kernel calls (one fused launch each, compiled).
        kernel_ops: ``{phase: count}`` of the ops inside those calls (their launches, run eagerly).
        bytes_moved: ``{phase: bytes}`` read and written (each launch's device tensors, inputs and
            outputs, counted once per launch; a kernel call counts its arguments and results, the
            traffic of one fused pass); ``kernel_bytes_moved``: the kernel calls' share.
        ops: ``{op: count}`` of the counted ops outside the activation kernels, for inspection.
        excluded: ``{reason: {op: count}}`` of the ops not counted, for inspection.
    """

    def __init__(self) -> None:
        super().__init__()
        self.phase = PHASES[0]
        self.launches: Counter[str] = Counter()
        self.kernel_calls: Counter[str] = Counter()
        self.kernel_ops: Counter[str] = Counter()
        self.bytes_moved: Counter[str] = Counter()
        self.kernel_bytes_moved: Counter[str] = Counter()
        self.ops: Counter[str] = Counter()
        self.excluded: dict[str, Counter[str]] = {}
        self.inside_kernel = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        reason = self._exclusion(func, (args, kwargs, out))
        if reason is not None:
            self.excluded.setdefault(reason, Counter())[str(func)] += 1
        elif self.inside_kernel:
            self.kernel_ops[self.phase] += 1
        else:
            self.launches[self.phase] += 1
            self.ops[str(func)] += 1
            self.bytes_moved[self.phase] += _device_bytes((args, kwargs, out))
        return out

    @staticmethod
    def _exclusion(func, tree) -> str | None:
        if func.namespace != "aten":
            return "not aten"
        if func.is_view:
            return "view"
        if str(func).removeprefix("aten.") in _ALLOCATION_OPS:
            return "allocation"
        if not any(t.device.type == PROFILE_DEVICE for t in _tensors(tree)):
            return "host"
        return None

    def kernel_call(self, kernel: Callable, args: tuple) -> Any:
        """Run an activation kernel eagerly, counted as one call and its ops apart."""
        self.kernel_calls[self.phase] += 1
        self.inside_kernel = True
        try:
            out = kernel(*args)
        finally:
            self.inside_kernel = False
        moved = _device_bytes((args, out))
        self.bytes_moved[self.phase] += moved
        self.kernel_bytes_moved[self.phase] += moved
        return out

    def total(self, compiled: bool = True) -> int:
        """Launches of the whole step: activation kernels fused (compiled) or op by op (eager)."""
        inside = self.kernel_calls if compiled else self.kernel_ops
        return sum(self.launches.values()) + sum(inside.values())


def _tensors(tree) -> list[torch.Tensor]:
    return [t for t in torch.utils._pytree.tree_leaves(tree) if isinstance(t, torch.Tensor)]


def _device_bytes(tree) -> int:
    """Bytes of the distinct device tensors in ``tree`` (each tensor's own extent, once)."""
    seen = {id(t): t for t in _tensors(tree) if t.device.type == PROFILE_DEVICE}
    return sum(t.numel() * t.element_size() for t in seen.values())


@contextlib.contextmanager
def _counted_kernels(counter: LaunchCounter | None):
    """Route the activations' kernel calls through ``counter`` (eagerly, uncounted if ``None``).

    Runs them as ``_run_kernel`` does (detached arguments) but without its autocast guard, which
    the meta device does not support (nothing runs under autocast here)."""
    original = _activations_module._run_kernel

    def run(kernel: Callable, impl: str, *args: Any):
        args = tuple(a.detach() if isinstance(a, torch.Tensor) else a for a in args)
        return counter.kernel_call(kernel, args) if counter is not None else kernel(*args)

    _activations_module._run_kernel = run
    try:
        yield
    finally:
        _activations_module._run_kernel = original


@dataclass
class StepProfile:
    """Counts for one network (see the section comment above for what is counted).

    ``launches``: kernel launches of one training step as the trainer runs it
    (:func:`trainact.training.train.train_epoch`: batch gathering, forward, loss, backward, RMSProp
    step, the running loss/accuracy sums); with the activation kernels compiled (one launch per
    call); ``launches_eager``: the same with impl "eager"; ``phase_launches``: the compiled count
    by phase; ``optimizer_launches_loop``: the RMSProp step without foreach (one kernel per op and
    parameter; CUDA's default is foreach).
    ``flops``: forward + backward FLOPs of the step by ``FlopCounterMode`` (convolutions and
    matrix products only: pointwise ops, pooling, the activations and the optimiser count 0).
    ``bytes_moved``: device memory read + written by the step's launches, each launch's tensors
    once (as if nothing stayed in the L2 cache between launches; cuDNN's workspace not included):
    about the step's DRAM traffic, for a memory-bandwidth bound; ``activation_bytes_moved``: the
    share of the activation kernel calls (input and output of each fused pass).
    ``eval_*``: the same for one evaluation batch (``eval_batch_size`` images, no_grad forward,
    summed cross-entropy, accuracy count, as the trainer's ``evaluate``).
    ``host_ms``: shortest wall time of the same step on this machine's CPU with the network shrunk
    to no arithmetic (:func:`_host_step_ms`), activation kernels run as ``host_impl`` says: the
    CPU-side cost of the step's launches here (NaN when not timed).
    """

    size: str
    activation: str
    parameters: int
    batch_size: int
    flops: int
    launches: int
    launches_eager: int
    kernel_calls: int
    phase_launches: dict[str, int]
    optimizer_launches_loop: int
    bytes_moved: int
    activation_bytes_moved: int
    eval_batch_size: int
    eval_flops: int
    eval_launches: int
    eval_launches_eager: int
    eval_bytes_moved: int
    host_impl: str
    host_ms: float

    @property
    def host_us_per_launch(self) -> float:
        """``host_ms`` per launch of the step as ``host_impl`` runs it."""
        launches = self.launches_eager if self.host_impl == "eager" else self.launches
        return 1e3 * self.host_ms / launches


def _meta_dataset(images: int) -> Any:
    from trainact.data.loader import DeviceDataset

    return DeviceDataset(
        torch.empty((images, *IMAGE_SHAPE), dtype=torch.uint8, device=PROFILE_DEVICE),
        torch.empty((images,), dtype=torch.int64, device=PROFILE_DEVICE),
        PROFILE_DEVICE,
    )


def _fit_step(
    model, optimizer, loss_fn, batches, totals: EpochTotals, counter: LaunchCounter | None = None
) -> None:
    """One iteration of the trainer's batch loop: the next batch (phase "data"), then the
    trainer's own :func:`trainact.training.step.classifier_step`, phase by phase."""

    def phase(name: str) -> None:
        if counter is not None:
            counter.phase = name

    phase("data")
    images, labels = next(batches)
    classifier_step(model, loss_fn, optimizer, images, labels, totals, phase=phase)


@torch.no_grad()
def _eval_batch(model, batches, totals: EpochTotals) -> None:
    """One iteration of the loop of :func:`trainact.training.evaluation.evaluate` (keep the two in
    step: evaluation has no gradient step to share)."""
    images, labels = next(batches)
    logits = model(images)
    totals.loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
    totals.correct += (logits.argmax(1) == labels).sum()


# Over 60 lines: one straight sequence (count the step, the loop optimiser, the evaluation,
# fill the record), kept together so that what is counted reads in one place. Not yet split.
def step_profile(
    size: str,
    activation: str,
    *,
    batch_size: int = 128,
    eval_batch_size: int = 1000,
    model_cfg: dict | None = None,
    impl: str | None = None,
    timing_steps: int = 20,
) -> StepProfile:
    """Count FLOPs and kernel launches of one training step and one evaluation batch.

    The network is ``build_model(size, activation, model_cfg)`` moved to the meta device (its
    values do not matter for counts). ``impl`` overrides ``model_cfg["impl"]``; every fast impl
    ("auto", "compiled", "eager") gives the same counts (the kernel calls are counted whatever
    runs them), "reference" counts the reference formulas' ops instead (no kernel calls).
    The optimiser is ``torch.optim.RMSprop(foreach=True)``, CUDA's default; the step counted is
    the second (the first also allocates the optimiser's state). ``timing_steps``: steps timed
    for ``host_ms`` (0: not timed, NaN).
    """
    cfg = dict(model_cfg or {})
    if impl is not None:
        cfg["impl"] = impl
    host_impl = cfg.get("impl", "auto")
    model = build_model(size, activation, cfg).to(PROFILE_DEVICE)
    optimizer = rmsprop(model.parameters(), **RMSPROP, foreach=True)
    loss_fn = nn.CrossEntropyLoss()
    train_set = _meta_dataset(batch_size * 2)
    batches = train_set.batches(batch_size, shuffle=True, seed=0, epoch=1)
    sums = EpochTotals(PROFILE_DEVICE)

    with _counted_kernels(None):  # the first step also allocates the optimiser's state
        _fit_step(model, optimizer, loss_fn, batches, sums)
    counter, flop_counter = LaunchCounter(), FlopCounterMode(display=False)
    with _counted_kernels(counter), flop_counter, counter:
        _fit_step(model, optimizer, loss_fn, batches, sums, counter)

    # The same optimiser step without foreach: a loop over parameters (CPU's default). Its first
    # step allocates its state; the gradients are still those of the counted step.
    loop = rmsprop(model.parameters(), **RMSPROP, foreach=False)
    loop.step()
    loop_counter = LaunchCounter()
    with loop_counter:
        loop.step()

    model.eval()
    eval_set = _meta_dataset(eval_batch_size)
    eval_batches, eval_sums = eval_set.batches(eval_batch_size), EpochTotals(PROFILE_DEVICE)  # once per epoch
    eval_counter, eval_flops = LaunchCounter(), FlopCounterMode(display=False)
    with _counted_kernels(eval_counter), eval_flops, eval_counter:
        _eval_batch(model, eval_batches, eval_sums)

    return StepProfile(
        size=size,
        activation=activation,
        parameters=parameter_count(model),
        batch_size=batch_size,
        flops=flop_counter.get_total_flops(),
        launches=counter.total(compiled=True),
        launches_eager=counter.total(compiled=False),
        kernel_calls=sum(counter.kernel_calls.values()),
        phase_launches={p: counter.launches[p] + counter.kernel_calls[p] for p in PHASES},
        optimizer_launches_loop=loop_counter.total(),
        bytes_moved=sum(counter.bytes_moved.values()),
        activation_bytes_moved=sum(counter.kernel_bytes_moved.values()),
        eval_batch_size=eval_batch_size,
        eval_flops=eval_flops.get_total_flops(),
        eval_launches=eval_counter.total(compiled=True),
        eval_launches_eager=eval_counter.total(compiled=False),
        eval_bytes_moved=sum(eval_counter.bytes_moved.values()),
        host_impl=host_impl,
        host_ms=(_host_step_ms(size, activation, cfg, timing_steps) if timing_steps else math.nan),
    )


def _host_step_ms(size: str, activation: str, model_cfg: dict, steps: int) -> float:
    """Fewest milliseconds of a training step of the same network shrunk to one channel per
    layer, one hidden unit and one image, on the CPU: the same ops and kernel calls as the real
    step (so the same launch count) with next to no arithmetic, i.e. the CPU-side cost of the
    step's launches on this machine (Python, autograd, dispatch, the compiled kernels' wrappers),
    without the GPU driver's own launch cost."""
    tiny = {**model_cfg, "filters": {size: [1, 1, 1]}, "hidden": 1}
    model = build_model(size, activation, tiny)
    optimizer = rmsprop(model.parameters(), **RMSPROP, foreach=True)
    warmup = 3  # the first calls compile the activation kernels (impl auto/compiled)
    images = torch.zeros((warmup + steps, *IMAGE_SHAPE), dtype=torch.uint8)
    labels = torch.zeros(warmup + steps, dtype=torch.int64)
    from trainact.data.loader import DeviceDataset

    batches = DeviceDataset(images, labels, "cpu").batches(1, shuffle=True, seed=0, epoch=1)
    sums = EpochTotals("cpu")
    seconds = []
    threads = torch.get_num_threads()
    # One thread: a GPU job's host side is one Python thread, and on a busy machine a tiny op's
    # OpenMP barrier waits for descheduled threads (measured here: ~30x slower per op).
    torch.set_num_threads(1)
    try:
        for index in range(warmup + steps):
            start = time.perf_counter()
            _fit_step(model, optimizer, nn.CrossEntropyLoss(), batches, sums)
            if index >= warmup:
                seconds.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    # The fastest step, as timeit advises for such timings: slower ones were held up by other
    # processes (on a shared 2-core machine the median of a compiled Fourier step doubled).
    return 1e3 * min(seconds)


def run_profile(
    sizes: list[str] | tuple[str, ...] = tuple(PAPER_FILTERS),
    activations: list[str] | tuple[str, ...] = ACTIVATIONS,
    **kwargs: Any,
) -> list[StepProfile]:
    """:func:`step_profile` of every ``size x activation`` network, size-major."""
    check_choices(sizes, activations, kwargs.get("impl"))
    counts = {k: kwargs.get(k, 1) for k in ("batch_size", "eval_batch_size")}
    if min(counts.values()) < 1 or kwargs.get("timing_steps", 0) < 0:
        raise ValueError(
            f"batch sizes must be >= 1 and timing steps >= 0, got {counts}, "
            f"timing_steps {kwargs.get('timing_steps')}"
        )
    return [
        step_profile(size, activation, **kwargs)
        for size in dict.fromkeys(sizes)
        for activation in dict.fromkeys(activations)
    ]


def format_profile(profiles: list[StepProfile]) -> str:
    """Plain-text table of :func:`run_profile`, one row per network, and a legend."""
    first = profiles[0]
    header = (
        f"{'size':<7} {'activation':<10} {'GFLOP':>6} {'launch':>6} {'eager':>6} {'act':>4} "
        f"{'actMB':>5} "
        f"{'data':>4} {'fwd':>4} {'bwd':>4} {'opt':>4} {'loop':>4} {'sums':>4} {'MB':>5} "
        f"{'host ms':>7} {'us/l':>5} {'evGFLOP':>7} {'evL':>4} {'evLe':>4} {'evMB':>5}"
    )
    lines = [
        f"kernel launches and FLOPs per training step (batch {first.batch_size}) and per "
        f"evaluation batch ({first.eval_batch_size} images), counted on the meta device; "
        f"host: the step on this CPU, no arithmetic, impl {first.host_impl}",
        header,
        "-" * len(header),
    ]
    for p in profiles:
        ph = p.phase_launches
        lines.append(
            f"{p.size:<7} {p.activation:<10} {p.flops / 1e9:>6.2f} {p.launches:>6d} "
            f"{p.launches_eager:>6d} {p.kernel_calls:>4d} {p.activation_bytes_moved / 1e6:>5.0f} "
            f"{ph['data']:>4d} {ph['forward']:>4d} "
            f"{ph['backward']:>4d} {ph['optimizer']:>4d} {p.optimizer_launches_loop:>4d} "
            f"{ph['bookkeeping']:>4d} {p.bytes_moved / 1e6:>5.0f} {p.host_ms:>7.2f} "
            f"{p.host_us_per_launch:>5.1f} {p.eval_flops / 1e9:>7.2f} {p.eval_launches:>4d} "
            f"{p.eval_launches_eager:>4d} {p.eval_bytes_moved / 1e6:>5.0f}"
        )
    lines += [
        "GFLOP: forward + backward, convolutions and matrix products only (FlopCounterMode).",
        "launch: kernel launches, activation kernels compiled (one launch per call; act = calls,",
        "  actMB = the bytes they read + write);",
        "  eager: the same with the activation kernels op by op (impl eager).",
        "data/fwd/bwd/opt/sums: launch by phase (batch gathering, forward + loss, backward,",
        "  RMSProp foreach step, running loss/accuracy); loop: the RMSProp step without foreach.",
        "MB: bytes read + written by the launches. host ms: the step on this CPU with the networks",
        "  shrunk to no arithmetic; us/l: that per launch. ev*: one evaluation batch (evL compiled,",
        "  evLe eager).",
    ]
    return "\n".join(lines)
