"""Training throughput of every CNN size x activation: ``python -m trainact bench``.

What it measures: full training steps (uint8 batch -> float in [0, 1], forward, cross-entropy,
backward, RMSProp step) on random data that lives on the device, so data loading plays no part.
All networks are built in one process and their steps are interleaved round-robin: step k of
network 1, step k of network 2, ..., so that machine noise (other processes, frequency changes)
hits every network alike. Each network's throughput is the median over its timed steps, and is
reported as a ratio to the ReLU network of the same size (ReLU is always measured, as the
baseline). Warm-up steps are not timed; the first one includes ``torch.compile`` of the
activation kernels (compiled once per process, so only the first network using a kernel pays),
reported as ``first_step_s``.

Below the table (not with ``--json``, whose list other tools read) it compares PSO's two
particle evaluators the same way: all particles in one ``vmap``-ed pass against a loop over
them (:func:`bench_evaluators`; ``trainact pso-bench`` varies the setting).

``--profile`` counts instead of timing (:func:`step_profile`): per network, the FLOPs of one
training step and the device kernels it launches, by phase, with the activation kernels compiled
and eager, the same for one evaluation batch, and the step's CPU-side cost on this machine. The
counts do not depend on the machine; they are what a GPU time estimate multiplies (README, "Speed").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from trainact.nn import activations as _activations_module
from trainact.nn.activations import IMPLS
from trainact.data.cifar import IMAGE_SHAPE, NUM_CLASSES
from trainact.nn.models import build_model, parameter_count
from trainact.names import ACTIVATIONS, PAPER_FILTERS
from trainact.training.pso import NetworkLoss
from trainact.training.device import DEVICE_HELP, resolve_device
from trainact.training.random_state import seed_everything

BASELINE = "relu"
# Optimiser settings of the trainer (paper: RMSProp, rho = 0.95, lr = 0.001 for the first epochs).
RMSPROP = {"lr": 1e-3, "alpha": 0.95, "eps": 1e-7}


@dataclass
class BenchResult:
    """Throughput of one network. ``ratio_to_relu``: images/s over the same-size ReLU network's."""

    size: str
    activation: str
    images_per_s: float
    ratio_to_relu: float
    parameters: int
    first_step_s: float
    median_step_s: float


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Trainee:
    """One network with its optimiser and a fixed random batch on the device."""

    def __init__(
        self,
        size: str,
        activation: str,
        model_cfg: dict,
        batch_size: int,
        device: torch.device,
    ):
        self.size, self.activation, self.device = size, activation, device
        self.model = build_model(size, activation, model_cfg).to(device)
        self.optimizer = torch.optim.RMSprop(self.model.parameters(), **RMSPROP)
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randint(
            0, 256, (batch_size, *IMAGE_SHAPE), dtype=torch.uint8, generator=generator
        ).to(device)
        self.labels = torch.randint(
            0, NUM_CLASSES, (batch_size,), generator=generator
        ).to(device)
        self.loss_fn = nn.CrossEntropyLoss()
        self.first_step_s = math.nan
        self.step_seconds: list[float] = []

    def step(self) -> float:
        """One training step; returns its wall-clock seconds (device synchronised)."""
        _synchronize(self.device)
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(self.images.float() / 255.0)
        loss = self.loss_fn(logits, self.labels)
        loss.backward()
        self.optimizer.step()
        _synchronize(self.device)
        return time.perf_counter() - start


def _check_choices(sizes, activations, impl: str | None) -> None:
    for size in sizes:
        if size not in PAPER_FILTERS:
            raise ValueError(
                f"unknown size {size!r}; allowed: {', '.join(PAPER_FILTERS)}"
            )
    for activation in activations:
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}"
            )
    if impl is not None and impl not in IMPLS:
        raise ValueError(f"unknown impl {impl!r}; allowed: {', '.join(IMPLS)}")


def run_bench(
    sizes: list[str] | tuple[str, ...] = tuple(PAPER_FILTERS),
    activations: list[str] | tuple[str, ...] = ACTIVATIONS,
    *,
    batch_size: int = 128,
    steps: int = 20,
    warmup: int = 3,
    device: str = "auto",
    impl: str | None = None,
    model_cfg: dict | None = None,
    progress: bool = True,
) -> list[BenchResult]:
    """Measure every ``size x activation`` network (plus the ReLU baselines), interleaved.

    ``impl`` (activation implementation) overrides ``model_cfg["impl"]`` when given.
    Returns one result per network in the order size, then activation (``relu`` first).
    """
    _check_choices(sizes, activations, impl)
    if batch_size < 1 or steps < 1 or warmup < 1:
        raise ValueError(
            f"batch_size, steps and warmup must be >= 1, got {batch_size}, {steps}, {warmup} "
            "(warm-up includes compilation, which must not be timed)"
        )
    torch_device = resolve_device(device)
    cfg = dict(model_cfg or {})
    if impl is not None:
        cfg["impl"] = impl
    names = [BASELINE] + [a for a in dict.fromkeys(activations) if a != BASELINE]
    trainees = [
        _Trainee(size, a, cfg, batch_size, torch_device)
        for size in dict.fromkeys(sizes)
        for a in names
    ]

    with tqdm(
        total=(warmup + steps) * len(trainees),
        desc="bench",
        unit="step",
        disable=not progress,
        file=sys.stderr,
    ) as bar:
        for round_index in range(warmup + steps):
            for trainee in trainees:
                seconds = trainee.step()
                if round_index == 0:
                    trainee.first_step_s = seconds
                if round_index >= warmup:
                    trainee.step_seconds.append(seconds)
                bar.update()

    medians = [statistics.median(t.step_seconds) for t in trainees]
    baseline = {
        t.size: m for t, m in zip(trainees, medians) if t.activation == BASELINE
    }
    return [
        BenchResult(
            size=t.size,
            activation=t.activation,
            images_per_s=batch_size / median,
            ratio_to_relu=baseline[t.size] / median,
            parameters=parameter_count(t.model),
            first_step_s=t.first_step_s,
            median_step_s=median,
        )
        for t, median in zip(trainees, medians)
    ]


def format_table(results: list[BenchResult]) -> str:
    """Plain-text table, one row per network."""
    header = f"{'size':<7} {'activation':<10} {'params':>9} {'images/s':>9} {'x relu':>7} {'first step s':>12}"
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.size:<7} {r.activation:<10} {r.parameters:>9,d} {r.images_per_s:>9.1f} "
            f"{r.ratio_to_relu:>7.2f} {r.first_step_s:>12.2f}"
        )
    return "\n".join(lines)


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
# ``trainact.nn.activations._run_kernel`` (one call per forward and one per backward of each
# activation layer). While counting, that function is replaced by a counting one that runs the
# kernel eagerly: the ops inside are tallied apart, as the launches of impl "eager", and the call
# itself counts one launch, as impl "auto"/"compiled" on a GPU, where Inductor fuses each kernel
# function into one Triton kernel (the backward's reductions may need a second, split-reduction
# kernel; see ``kernel_calls`` to scale).

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
    return [
        t for t in torch.utils._pytree.tree_leaves(tree) if isinstance(t, torch.Tensor)
    ]


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
        return (
            counter.kernel_call(kernel, args) if counter is not None else kernel(*args)
        )

    _activations_module._run_kernel = run
    try:
        yield
    finally:
        _activations_module._run_kernel = original


@dataclass
class StepProfile:
    """Counts for one network (see the section comment above for what is counted).

    ``launches``: kernel launches of one training step as ``trainact.training.train.fit`` runs it (batch
    gathering, forward, loss, backward, RMSProp step, the running loss/accuracy sums), with the
    activation kernels compiled (one launch per call); ``launches_eager``: the same with impl
    "eager"; ``phase_launches``: the compiled count by phase; ``optimizer_launches_loop``: the
    RMSProp step without foreach (one kernel per op and parameter; CUDA's default is foreach).
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
    model, optimizer, loss_fn, batches, sums, counter: LaunchCounter | None = None
) -> None:
    """One iteration of ``trainact.training.train.fit``'s batch loop, op for op (keep the two in step)."""

    def phase(name: str) -> None:
        if counter is not None:
            counter.phase = name

    phase("data")
    images, labels = next(batches)
    phase("forward")
    logits = model(images)
    loss = loss_fn(logits, labels)
    phase("backward")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    phase("optimizer")
    optimizer.step()
    phase("bookkeeping")
    loss_sum, correct = sums
    loss_sum += loss.detach().double() * labels.shape[0]
    correct += (logits.detach().argmax(1) == labels).sum()


@torch.no_grad()
def _eval_batch(model, batches, sums) -> None:
    """One iteration of ``trainact.training.train.evaluate``'s loop (keep the two in step)."""
    images, labels = next(batches)
    logits = model(images)
    loss_sum, correct = sums
    loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
    correct += (logits.argmax(1) == labels).sum()


def _new_sums() -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.zeros((), dtype=torch.float64, device=PROFILE_DEVICE),
        torch.zeros((), dtype=torch.int64, device=PROFILE_DEVICE),
    )


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
    optimizer = torch.optim.RMSprop(model.parameters(), **RMSPROP, foreach=True)
    loss_fn = nn.CrossEntropyLoss()
    train_set = _meta_dataset(batch_size * 2)
    batches = train_set.batches(batch_size, shuffle=True, seed=0, epoch=1)
    sums = _new_sums()

    with _counted_kernels(None):  # the first step also allocates the optimiser's state
        _fit_step(model, optimizer, loss_fn, batches, sums)
    counter, flop_counter = LaunchCounter(), FlopCounterMode(display=False)
    with _counted_kernels(counter), flop_counter, counter:
        _fit_step(model, optimizer, loss_fn, batches, sums, counter)

    # The same optimiser step without foreach: a loop over parameters (CPU's default). Its first
    # step allocates its state; the gradients are still those of the counted step.
    loop = torch.optim.RMSprop(model.parameters(), **RMSPROP, foreach=False)
    loop.step()
    loop_counter = LaunchCounter()
    with loop_counter:
        loop.step()

    model.eval()
    eval_set = _meta_dataset(eval_batch_size)
    eval_batches, eval_sums = (
        eval_set.batches(eval_batch_size),
        _new_sums(),
    )  # once per epoch
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
        phase_launches={
            p: counter.launches[p] + counter.kernel_calls[p] for p in PHASES
        },
        optimizer_launches_loop=loop_counter.total(),
        bytes_moved=sum(counter.bytes_moved.values()),
        activation_bytes_moved=sum(counter.kernel_bytes_moved.values()),
        eval_batch_size=eval_batch_size,
        eval_flops=eval_flops.get_total_flops(),
        eval_launches=eval_counter.total(compiled=True),
        eval_launches_eager=eval_counter.total(compiled=False),
        eval_bytes_moved=sum(eval_counter.bytes_moved.values()),
        host_impl=host_impl,
        host_ms=(
            _host_step_ms(size, activation, cfg, timing_steps)
            if timing_steps
            else math.nan
        ),
    )


def _host_step_ms(size: str, activation: str, model_cfg: dict, steps: int) -> float:
    """Fewest milliseconds of a training step of the same network shrunk to one channel per
    layer, one hidden unit and one image, on the CPU: the same ops and kernel calls as the real
    step (so the same launch count) with next to no arithmetic, i.e. the CPU-side cost of the
    step's launches on this machine (Python, autograd, dispatch, the compiled kernels' wrappers),
    without the GPU driver's own launch cost."""
    tiny = {**model_cfg, "filters": {size: [1, 1, 1]}, "hidden": 1}
    model = build_model(size, activation, tiny)
    optimizer = torch.optim.RMSprop(model.parameters(), **RMSPROP, foreach=True)
    warmup = 3  # the first calls compile the activation kernels (impl auto/compiled)
    images = torch.zeros((warmup + steps, *IMAGE_SHAPE), dtype=torch.uint8)
    labels = torch.zeros(warmup + steps, dtype=torch.int64)
    from trainact.data.loader import DeviceDataset

    batches = DeviceDataset(images, labels, "cpu").batches(
        1, shuffle=True, seed=0, epoch=1
    )
    sums = (torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.int64))
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
    _check_choices(sizes, activations, kwargs.get("impl"))
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


# ------------------------------------------------------------- PSO's particle evaluators


def bench_evaluators(
    *,
    size: str = "middle",
    activation: str = "relu",
    particles: int = 10,
    batch_size: int = 1000,
    chunk_size: int = 500,
    repeats: int = 5,
    device: str | None = None,
    model_cfg: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Time vectorised against looped fitness evaluation, interleaved in this process.

    Each repeat times one vectorised and one looped evaluation of ``particles`` seeded networks on
    ``batch_size`` random images (alternating which goes first); speeds are particle-images per
    second. Returns the medians, the median of the per-repeat speed ratios and the largest loss
    difference between the two evaluators.
    """
    torch_device = resolve_device(device)
    seed_everything(seed)
    models = [build_model(size, activation, model_cfg) for _ in range(particles)]
    positions = torch.stack(
        [nn.utils.parameters_to_vector(m.parameters()).detach() for m in models]
    ).to(torch_device)
    model = models[0].to(torch_device)
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, 3, 32, 32, generator=generator).to(torch_device)
    labels = torch.randint(0, 10, (batch_size,), generator=generator).to(torch_device)
    objective = NetworkLoss(model, images, labels, chunk_size)

    def timed(evaluator: Callable[[Tensor], Tensor]) -> tuple[float, Tensor]:
        if torch_device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        losses = evaluator(positions)
        if torch_device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started, losses

    timed(objective.vectorised)  # warm-up: allocator, kernel selection
    timed(objective.looped)
    vectorised_seconds, looped_seconds, ratios, max_diff = [], [], [], 0.0
    for repeat in tqdm(
        range(repeats), desc="pso-bench", unit="repeat", disable=not progress
    ):
        order = (
            (objective.vectorised, objective.looped)
            if repeat % 2 == 0
            else (objective.looped, objective.vectorised)
        )
        results = {evaluator.__name__: timed(evaluator) for evaluator in order}
        (vec_s, vec_losses), (loop_s, loop_losses) = (
            results["vectorised"],
            results["looped"],
        )
        vectorised_seconds.append(vec_s)
        looped_seconds.append(loop_s)
        ratios.append(loop_s / vec_s)
        max_diff = max(max_diff, float((vec_losses - loop_losses).abs().max()))
    images_evaluated = particles * batch_size
    return {
        "device": str(torch_device),
        "size": size,
        "activation": activation,
        "particles": particles,
        "batch_size": batch_size,
        "chunk_size": chunk_size,
        "repeats": repeats,
        "vectorised_images_per_s": round(
            images_evaluated / statistics.median(vectorised_seconds), 1
        ),
        "looped_images_per_s": round(
            images_evaluated / statistics.median(looped_seconds), 1
        ),
        "speedup_median": round(statistics.median(ratios), 3),
        "max_abs_loss_difference": max_diff,
    }


def format_evaluator_bench(result: dict[str, Any]) -> str:
    """The text report of :func:`bench_evaluators` (``pso-bench``; ``bench`` below its table)."""
    return (
        f"PSO fitness evaluation, {result['size']}-{result['activation']} CNN, "
        f"{result['particles']} particles x {result['batch_size']} images on "
        f"{result['device']} (median of {result['repeats']}):\n"
        f"  vectorised (vmap) {result['vectorised_images_per_s']:>12,.0f} images/s\n"
        f"  looped            {result['looped_images_per_s']:>12,.0f} images/s\n"
        f"  speed-up          {result['speedup_median']:>12.2f} x   "
        f"(largest loss difference {result['max_abs_loss_difference']:.2e})"
    )


def _model_params(text: str | None) -> dict[str, Any]:
    """The model slice of ``--params '{"model": {...}}'`` (the shape ``train`` and ``pso`` take
    too, so one slice serves every command)."""
    from trainact.cli import parse_params

    params = parse_params(text, ("model",))
    return params.get("model", {})


def _cmd_bench(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError

    model_cfg = _model_params(args.params)
    if args.profile:
        return _profile_command(args, model_cfg)
    try:
        results = run_bench(
            args.sizes,
            args.activations,
            batch_size=args.batch_size,
            steps=args.steps,
            warmup=args.warmup,
            device=args.device,
            impl=args.impl,
            model_cfg=model_cfg,
            progress=not args.no_progress,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
        return 0
    device = resolve_device(args.device)
    print(
        f"training throughput, batch {args.batch_size}, median of {args.steps} interleaved steps, "
        f"device {device}, impl {args.impl or 'from config'}, "
        f"{torch.get_num_threads()} threads"
    )
    print(format_table(results))
    if args.pso:
        # PSO's two particle evaluators (Section 5.2), also side by side in this process, on the
        # paper's PSO setting: the middle ReLU CNN (or the first size benched), 10 particles,
        # a 1,000-image fitness batch. `trainact pso-bench` varies these.
        size = "middle" if "middle" in args.sizes else args.sizes[0]
        result = bench_evaluators(
            size=size,
            device=args.device,
            model_cfg=model_cfg,
            progress=not args.no_progress,
        )
        print()
        print(format_evaluator_bench(result))
    return 0


def _cmd_pso_bench(args: argparse.Namespace) -> int:
    from trainact.cli import CLIError

    for flag in ("particles", "batch_size", "chunk_size", "repeats"):
        if getattr(args, flag) < 1:
            raise CLIError(
                f"--{flag.replace('_', '-')} {getattr(args, flag)}: must be >= 1"
            )
    try:
        result = bench_evaluators(
            size=args.size,
            activation=args.activation,
            particles=args.particles,
            batch_size=args.batch_size,
            chunk_size=args.chunk_size,
            repeats=args.repeats,
            device=args.device,
            model_cfg=_model_params(args.params),
            progress=not args.no_progress,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    print(json.dumps(result, indent=1) if args.json else format_evaluator_bench(result))
    return 0


def _profile_command(args: argparse.Namespace, model_cfg: dict) -> int:
    from trainact.cli import CLIError

    try:
        profiles = run_profile(
            args.sizes,
            args.activations,
            batch_size=args.batch_size,
            eval_batch_size=args.eval_batch_size,
            model_cfg=model_cfg,
            impl=args.impl,
            timing_steps=args.steps,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if args.json:
        rows = [
            {**asdict(p), "host_us_per_launch": p.host_us_per_launch} for p in profiles
        ]
        for row in rows:  # not timed (--steps 0): null, as JSON has no NaN
            for key in ("host_ms", "host_us_per_launch"):
                row[key] = None if math.isnan(row[key]) else row[key]
        print(json.dumps(rows, indent=1))
    else:
        print(format_profile(profiles))
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``bench`` and ``pso-bench`` to the ``trainact`` CLI."""
    parser = subparsers.add_parser(
        "bench",
        help="training throughput of each size x activation, relative to ReLU",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "--sizes", nargs="+", default=list(PAPER_FILTERS), choices=list(PAPER_FILTERS)
    )
    parser.add_argument(
        "--activations", nargs="+", default=list(ACTIVATIONS), choices=list(ACTIVATIONS)
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing: count each network's FLOPs and kernel launches per training "
        "step and per evaluation batch (on the meta device, so the same on any machine), and "
        "time the step's CPU-side cost here; no PSO comparison",
    )
    parser.add_argument(
        "--eval-batch-size",
        type=int,
        default=1000,
        help="images per evaluation batch counted by --profile (train.eval_batch_size)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=20,
        help="timed steps per network (median taken; with --profile: steps of the CPU-side "
        "timing, the fastest taken, 0 = none)",
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed steps per network (compilation)"
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA if available), cpu, cuda, cuda:1, ...",
    )
    parser.add_argument(
        "--impl",
        default=None,
        choices=list(IMPLS),
        help="activation implementation (default: the --params impl, else auto)",
    )
    parser.add_argument(
        "--params",
        default=None,
        help='JSON: {"model": {...}}, the model config slice (keys of build_model)',
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list instead of the table"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar on stderr"
    )
    parser.add_argument(
        "--no-pso",
        dest="pso",
        action="store_false",
        help="skip the comparison of PSO's vectorised and looped particle evaluation that "
        "follows the table (not in --json; `trainact pso-bench --json` gives it)",
    )
    parser.set_defaults(func=_cmd_bench)

    parser = subparsers.add_parser(
        "pso-bench",
        help="time vectorised against looped PSO fitness evaluation",
        description="Interleaved timing of the two particle evaluators in one process; "
        "prints medians.",
    )
    parser.add_argument("--particles", type=int, default=10)
    parser.add_argument("--size", default="middle", help="small | middle | large")
    parser.add_argument("--activation", default="relu", help="relu | fourier | lc")
    parser.add_argument(
        "--batch-size", type=int, default=1000, help="fitness batch (images)"
    )
    parser.add_argument(
        "--chunk-size", type=int, default=500, help="images per forward pass"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help=DEVICE_HELP)
    parser.add_argument(
        "--params", default="{}", help='JSON: {"model": {...}} (filters, hidden, impl)'
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=_cmd_pso_bench)
