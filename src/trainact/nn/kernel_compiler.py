"""``torch.compile`` of the activation kernels, once per process, with the fallback to eager, and
the record of which implementations ran (:func:`kernel_report`).

``impl`` (see :data:`trainact.nn.trainable.IMPLS`) decides what a kernel call runs:

``"auto"``
    the compiled kernel; if compilation itself fails once (no C++ compiler, Triton missing, an
    unsupported platform or op: an exception of torch's compile stack, see
    :func:`_is_compiler_failure`), a warning is logged once and every activation of the process uses
    the eager kernels from then on. Any other error of a compiled call (out of memory, a wrong input
    shape) propagates unchanged and the compiled kernels stay in use.
``"compiled"``
    the compiled kernel, errors propagate.
``"eager"``
    the kernel function run eagerly (no compilation; slower; the same formulas up to float rounding).

The C++ extension of the fused max-pool (:mod:`trainact.nn.pool_kernels`) is built the same way,
once per process (:class:`ExtensionBuilder`, ``torch.utils.cpp_extension.load_inline``, cached on
disk by torch): under ``"auto"`` a failed build (no C++ compiler, no ninja) logs one warning and the
fused activation + max-pool runs its torch-op form from then on; ``"compiled"`` raises it.

Which implementations ran: :func:`kernel_report` says which of ``"compiled"``, ``"eager"``,
``"reference"`` and ``"cpp"`` (the C++ max-pool) produced activation outputs (or their gradients) in
this process, and the compilation errors that made ``"auto"`` fall back, if any; the trainer writes
it into a run's summary.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch

log = logging.getLogger(__name__)

# Inductor options of the kernels. With symbolic sizes the CPU code generator cannot tell that a
# pointwise loop is long enough to split across threads and emits a serial loop (measured: the
# Fourier forward ran on one of two cores); dynamic_threads makes every loop an OpenMP loop.
COMPILE_OPTIONS = {"cpp.dynamic_threads": True}


# Exceptions by which torch's compile stack says that it could not compile (module, class name),
# looked up with getattr because the classes move between torch versions. BackendCompilerFailed
# wraps whatever the backend raised (InductorError, its subclass, wraps Inductor's own errors: a
# missing or broken C++ compiler arrives as InductorError(InvalidCxxCompiler), measured with
# torch 2.14); the others are listed in case they surface unwrapped. Deliberately absent:
# TorchRuntimeError, dynamo's wrapper of an error raised by the traced code itself (a wrong input
# shape), which eager would raise as well.
_COMPILER_FAILURES = (
    ("torch._dynamo.exc", "BackendCompilerFailed"),
    # an op or construct dynamo cannot trace (fatal with fullgraph=True)
    ("torch._dynamo.exc", "Unsupported"),
    ("torch._dynamo.exc", "InternalTorchDynamoError"),
    # fullgraph=True past the recompile limit
    ("torch._dynamo.exc", "FailOnRecompileLimitHit"),
    ("torch._dynamo.exc", "TritonUnavailableError"),
    ("torch._inductor.exc", "InductorError"),
    # also its subclasses CUDACompileError, XPUCompileError
    ("torch._inductor.exc", "CppCompileError"),
    ("torch._inductor.exc", "InvalidCxxCompiler"),
    ("torch._inductor.exc", "CppWrapperCodegenError"),
    # lowering errors, missing decompositions
    ("torch._inductor.exc", "OperatorIssue"),
    ("torch._inductor.exc", "SubgraphLoweringException"),
    ("torch._inductor.exc", "TritonMissing"),
    ("torch._inductor.exc", "GPUTooOldForTriton"),
)


def _compiler_failure_types() -> tuple[type[BaseException], ...]:
    """The classes of :data:`_COMPILER_FAILURES` that exist in this torch.

    Only modules already imported are consulted (``sys.modules``): an exception of a module that
    was never imported cannot have been raised, and importing ``torch._dynamo`` here would cost
    every process that never compiles about a second.
    """
    found = []
    for module_name, class_name in _COMPILER_FAILURES:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def _is_compiler_failure(exc: BaseException) -> bool:
    """Whether ``exc``, raised by a compiled kernel call, means that compilation itself failed.

    True for the exceptions of torch's compile stack (:data:`_COMPILER_FAILURES`), unless they
    wrap an out-of-memory error (``torch.OutOfMemoryError`` anywhere in the chain of
    ``inner_exception``/``__cause__``): running out of memory while compiling (autotuning) is not a
    reason to run eagerly for good, and eager would need the memory too. Everything else (an
    out-of-memory or other runtime error of the kernel, a shape error) is the caller's to see.
    """
    if not isinstance(exc, _compiler_failure_types()):
        return False
    # torch.OutOfMemoryError since torch 2.5, torch.cuda.OutOfMemoryError before
    out_of_memory = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, out_of_memory):
            return False
        seen.add(id(current))
        current = getattr(current, "inner_exception", None) or current.__cause__
    return True


def _describe(exc: BaseException) -> str:
    """``"ExcType: first line of the message"``."""
    message = str(exc)
    return f"{type(exc).__name__}: {message.splitlines()[0] if message else ''}"


# Implementations that produced activation outputs or gradients in this process (kernel_report).
_IMPLEMENTATIONS_RUN: set[str] = set()


def record_implementation(impl: str) -> None:
    """Note that ``impl`` (``"compiled"``, ``"eager"``, ``"reference"`` or ``"cpp"``) produced an
    activation output or gradient (:func:`kernel_report`)."""
    _IMPLEMENTATIONS_RUN.add(impl)


class _KernelCompiler:
    """Compiles each kernel function once per process, and remembers a failure under ``"auto"``.

    ``dynamic=True``: sizes are symbolic from the first call, so all layers, the last partial
    batch and evaluation share a few graphs per (layout, dtype, device) instead of one graph per
    shape, which would exceed dynamo's recompile limit (8) in a single model. (Inductor still
    splits small and large tensors, above and below 4096 elements, and per-channel inputs with a
    single element per channel; about five graphs per kernel when both layouts are used.)

    Under ``"auto"`` a compiler failure (:func:`_is_compiler_failure`, or any exception of
    ``compile_fn`` itself, e.g. torch.compile's refusal of an unsupported Python) sets ``failed``
    and ``failure`` (``"ExcType: first line"``), logs one warning and runs the kernel eagerly, now
    and for every later call. Other exceptions of a compiled call propagate and change nothing.
    Each call that completes adds ``"compiled"`` or ``"eager"`` to the process's record
    (:func:`kernel_report`).
    """

    def __init__(self, compile_fn: Callable[..., Callable] = torch.compile):
        self.compile_fn = compile_fn
        self.compiled: dict[Callable, Callable] = {}
        self.failed = False
        self.failure: str | None = None

    def __call__(self, kernel: Callable, impl: str, *args: Any):
        if impl == "eager" or (impl == "auto" and self.failed):
            return self._eager(kernel, *args)
        try:
            if kernel not in self.compiled:
                self.compiled[kernel] = self.compile_fn(
                    kernel, dynamic=True, fullgraph=True, options=COMPILE_OPTIONS
                )
        except Exception as exc:
            # compile_fn itself does not run the kernel: whatever it raises is the compiler's
            if impl == "compiled":
                raise
            return self._fall_back(exc, kernel, *args)
        if impl == "compiled":
            result = self.compiled[kernel](*args)
        else:
            try:
                result = self.compiled[kernel](*args)
            except Exception as exc:
                if not _is_compiler_failure(exc):
                    raise
                return self._fall_back(exc, kernel, *args)
        record_implementation("compiled")
        return result

    def _eager(self, kernel: Callable, *args: Any):
        result = kernel(*args)
        record_implementation("eager")
        return result

    def _fall_back(self, exc: Exception, kernel: Callable, *args: Any):
        """Switch to the eager kernels for good (one warning), and run ``kernel`` eagerly."""
        self.failed, self.failure = True, _describe(exc)
        log.warning(
            "torch.compile of the activation kernels failed (%s); "
            "using the eager kernels from now on (slower, same results)",
            self.failure,
        )
        return self._eager(kernel, *args)


_COMPILER = _KernelCompiler()


class ExtensionBuilder:
    """Builds a C++ extension once per process (``build()``), and remembers a failure.

    :meth:`get` returns the built module; if ``build`` raises, the error is kept (``failure``,
    ``"ExcType: first line"``) and logged once, and :meth:`get` returns ``None`` under ``"auto"``
    from then on (the caller runs its torch-op form) and raises under ``"compiled"``. Not for
    ``"eager"`` (no compilation): callers do not ask then.
    """

    def __init__(self, build: Callable[[], Any]):
        self.build = build
        self.module: Any = None
        self.error: Exception | None = None
        self.failure: str | None = None

    def get(self, impl: str) -> Any:
        if self.module is None and self.error is None:
            try:
                self.module = self.build()
            except Exception as exc:
                self.error, self.failure = exc, _describe(exc)
                log.warning(
                    "building the C++ max-pool of the activation kernels failed (%s); "
                    "using its torch-op form from now on (slower, same results)",
                    self.failure,
                )
        if self.error is not None and impl == "compiled":
            raise RuntimeError(f"the C++ max-pool extension could not be built: {self.failure}") from (
                self.error
            )
        return self.module


def run_kernel_as(kernel: Callable, impl: str, *args: Any):
    """``kernel(*args)``, compiled or eagerly as ``impl`` says, through the process's compiler."""
    return _COMPILER(kernel, impl, *args)


def kernel_report() -> dict[str, Any]:
    """Which implementations of the trainable activations ran in this process.

    Returns ``{"implementations": [...], "compile_failure": ..., "pool_extension_failure": ...}``:
    ``implementations`` is the sorted list of those among ``"compiled"``, ``"eager"``,
    ``"reference"`` and ``"cpp"`` that produced an activation output (or gradient) since the
    process started or :func:`reset_kernel_report`: ``"compiled"`` for a kernel call that ran
    compiled, ``"eager"`` for one run eagerly (``impl`` ``"eager"``, or ``"auto"`` after a compiler
    failure), ``"reference"`` for a module forward with ``impl="reference"``, ``"cpp"`` for the
    C++ max-pool fused with an activation (:mod:`trainact.nn.pool_kernels`). ``compile_failure`` is
    ``None``, or ``"ExcType: first line of the message"`` of the compiler failure that switched
    ``"auto"`` to the eager kernels (for good: it stays after a reset); ``pool_extension_failure``
    likewise for the build of the C++ max-pool. A network without Fourier or LC activations (ReLU)
    reports ``{"implementations": [], "compile_failure": None, "pool_extension_failure": None}``.
    """
    return {
        "implementations": sorted(_IMPLEMENTATIONS_RUN),
        "compile_failure": _COMPILER.failure,
        "pool_extension_failure": _pool_extension_failure(),
    }


@contextlib.contextmanager
def recording_kernels(record: set[str]) -> Iterator[set[str]]:
    """Within the block, :func:`kernel_report` reads and :func:`record_implementation` adds to
    ``record`` instead of the process's record: what a pack (:mod:`trainact.training.pack`) wraps
    each network's steps in, so that each network's summary names the implementations it ran."""
    global _IMPLEMENTATIONS_RUN
    saved, _IMPLEMENTATIONS_RUN = _IMPLEMENTATIONS_RUN, record
    try:
        yield record
    finally:
        _IMPLEMENTATIONS_RUN = saved


def _pool_extension_failure() -> str | None:
    # the builder lives with the max-pool kernels; not imported here if nothing used them
    pool_kernels = sys.modules.get("trainact.nn.pool_kernels")
    return None if pool_kernels is None else pool_kernels.EXTENSION.failure


def reset_kernel_report() -> None:
    """Forget which implementations ran (:func:`trainact.training.train.fit` calls it at the start of each
    run, so that a summary reports that run's). The compiler's failure state is kept: it still
    decides what ``"auto"`` runs."""
    _IMPLEMENTATIONS_RUN.clear()
