"""Trainable activation functions of the paper: Fourier series (eq. 2) and linear combination (eq. 7).

Each activation exists twice:

* a *reference* implementation (:func:`fourier_reference`, :func:`linear_combination_reference`):
  the formula written in obvious torch ops, differentiated by autograd. Tests compare against it.
* a *fast* implementation used for training: a custom :class:`torch.autograd.Function` whose
  forward and backward are each one pure, pointwise(+reduction) kernel function. The forward saves
  only its input ``x``; the backward recomputes the cheap pointwise terms (``sin``/``cos`` or the
  candidate functions) instead of storing them, and returns all parameter gradients as reductions
  from the same pass. The linear combination's kernels take the raw weights and normalise them
  themselves (``w / guard(sum w)``, its derivative written out by hand), so an LC layer adds a
  single node to the autograd graph. Each kernel is ``torch.compile``-d once per process
  (module-level functions shared by every layer), which fuses it into one loop over memory; that is
  what makes a Fourier-CNN train at a useful fraction of the ReLU network's speed on a CPU (see
  ``trainact bench``).

``impl`` selects the implementation:

``"auto"`` (default)
    compiled kernels; if compilation itself fails once (no C++ compiler, Triton missing, an
    unsupported platform or op: an exception of torch's compile stack, see
    :func:`_is_compiler_failure`), a warning is logged once and every activation of the process uses
    the eager kernels from then on. Any other error of a compiled call (out of memory, a wrong input
    shape) propagates unchanged and the compiled kernels stay in use.
``"compiled"``
    compiled kernels, errors propagate.
``"eager"``
    the same autograd.Function with the kernels run eagerly (no compilation; slower; the same
    formulas up to float rounding).
``"reference"``
    the reference formula with autograd (for checking; slow, stores every intermediate).

Precision: the fast kernels compute in ``float32`` at least (``float64`` inputs stay ``float64``) and
return the input's dtype. Under autocast (``bfloat16``/``float16`` convolution outputs) the Fourier
series must not be evaluated in half precision: ``sin(n w x)`` of a bf16 ``x`` is wrong by up to about
0.5 on outputs of magnitude 1, so inputs and parameters are upcast inside the kernel, autocast is
disabled there, and the result is cast back to the input dtype.

Which implementations ran: :func:`kernel_report` says which of ``"compiled"``, ``"eager"`` and
``"reference"`` produced activation outputs (or their gradients) in this process, and the
compilation error that made ``"auto"`` fall back, if any; the trainer writes it into a run's
summary.

Shapes: an activation maps ``(N, *)`` to the same shape. With ``per_channel=True`` the parameters
have a leading channel dimension ``C`` and broadcast over dimension 1 of an ``(N, C, *)`` input
(convolution feature maps ``(N, C, H, W)`` or linear features ``(N, C)``).
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from trainact.names import ACTIVATIONS
from trainact.names import LC_CANDIDATES as PAPER_LC_CANDIDATES

log = logging.getLogger(__name__)

IMPLS = ("auto", "compiled", "eager", "reference")
FOURIER_INITS = ("calibrated", "relu_fit", "random")

# Fourier "relu_fit" initialisation: the series has period 2*pi/omega; fitting ReLU on an interval
# of width W with period 1.5*W leaves a third of the period for the series to come back from the
# value at the right end to the value at the left end. With period W (omega = pi/L on [-L, L]) the
# periodic extension of ReLU jumps by L at the interval ends, and the rank-5 fit rings (Gibbs) with
# errors up to 0.5*L inside the interval; with period 2*W the least-squares system is ill
# conditioned (coefficients about 8*L with cancelling signs). Period 1.5*W gives a maximum error of
# 0.023*W/2 (0.093 on [-4, 4]) with coefficients below 2 (measured for rank 5).
RELU_FIT_PERIOD_PER_WIDTH = 1.5
RELU_FIT_GRID_POINTS = 4001
# Fourier "calibrated" initialisation: the same ReLU fit on init_interval ([-4, 4]), applied at the
# layer's own scale: act(x) = s * g(x / s) with g the fitted series and s a fixed (not trained)
# scale chosen so that init_interval maps onto [-k r, k r], r the root mean square of the layer's
# input on a calibration batch (trainact.nn.calibration measures it), k = CALIBRATION_SIGMAS. ReLU is
# positively homogeneous (s * relu(x / s) = relu(x)), so the layer starts as the ReLU fit on the
# range its inputs really take. With k = 3 about 0.3 % of Gaussian pre-activations fall outside the
# interval at the start (where the periodic series turns back down), and the fit's rounding of
# ReLU's kink (error 0.0233 * k * r at 0) stays a small fraction of the signal. Why a fixed scale
# instead of refitting the coefficients on [-k r, k r]: the refitted A, a_n, b_n are k r / 4 times
# smaller (0.01-0.3 instead of 0.1-2) while RMSProp moves every parameter by about the learning rate
# per step whatever its size, so their shape would change 10-30x faster than the layer's weights
# (measured: the non-linear share of a refitted layer went from 0.56 to 0.99 in 8 steps). With the
# scale outside, the trained parameters keep the magnitudes of the [-4, 4] fit.
CALIBRATION_SIGMAS = 3.0
# Fourier "random" initialisation: A = 0, a_n, b_n ~ Normal(0, RANDOM_INIT_STD^2), omega = 1.
RANDOM_INIT_STD = 0.1
RANDOM_INIT_OMEGA = 1.0

# Linear combination: default lower bound of |sum_i w_i| (see guarded_weight_sum).
LC_DEFAULT_EPS = 1e-2


# ---------------------------------------------------------------------------------------------
# Candidate functions of the linear combination.


def _identity(x: Tensor) -> Tensor:
    return x


# Candidate functions of the reference implementation; the paper combines ReLU, sigmoid, tanh and
# the identity. The fast kernels use equivalent forms (_COMPILED_CANDIDATES below).
LC_CANDIDATES: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "linear": _identity,
}


# ---------------------------------------------------------------------------------------------
# Reference implementations (the formulas, autograd does the gradients).


def _channel_shape(x: Tensor) -> tuple[int, ...]:
    """Shape that makes a ``(C,)`` parameter broadcast over dimension 1 of ``x``."""
    return (1, x.shape[1]) + (1,) * (x.dim() - 2)


def fourier_reference(
    x: Tensor, A: Tensor, omega: Tensor, a: Tensor, b: Tensor
) -> Tensor:
    """``A + sum_{n=1}^{rank} a_n cos(n omega x) + b_n sin(n omega x)`` in plain torch ops.

    Per-layer parameters: ``A``, ``omega`` of shape ``(1,)`` (or ``()``), ``a``, ``b`` of shape
    ``(rank,)``. Per-channel parameters: ``A``, ``omega`` of shape ``(C,)``, ``a``, ``b`` of shape
    ``(C, rank)``, broadcast over dimension 1 of ``x``.
    """
    if a.dim() == 2:  # per channel
        shape = _channel_shape(x)
        A, omega = A.reshape(shape), omega.reshape(shape)
        coefficients = [
            (a[:, n].reshape(shape), b[:, n].reshape(shape)) for n in range(a.shape[1])
        ]
    else:
        coefficients = [(a[n], b[n]) for n in range(a.shape[0])]
    y = A + torch.zeros_like(x)
    for n, (a_n, b_n) in enumerate(coefficients, start=1):
        y = y + a_n * torch.cos(n * omega * x) + b_n * torch.sin(n * omega * x)
    return y


def fourier_at_scale(
    A: Tensor, omega: Tensor, a: Tensor, b: Tensor, scale: Tensor | float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``s A, omega / s, s a, s b``: the series ``s g(x / s)`` written as a series in ``x`` itself.

    Formed from the tiny parameter tensors with autograd ops, so the kernels need no extra pass
    over ``x`` and the gradients with respect to ``A, omega, a, b`` are autograd's.
    """
    return scale * A, omega / scale, scale * a, scale * b


def guarded_weight_sum(weight_sum: Tensor, eps: float) -> Tensor:
    """The denominator of eq. (7), kept away from zero: ``sign(s) * max(|s|, eps)``, ``sign(0) = +1``.

    Where ``|s| >= eps`` this is ``s`` itself (gradient 1, eq. (8) holds exactly); where ``|s| < eps``
    it is the constant ``+-eps`` (gradient 0 with respect to the weights), so the activation stays
    finite: it is then ``sum_i w_i act_i(x) / (+-eps)``, at most ``1/eps`` times the numerator.
    At the kink ``|s| = eps`` (value continuous) autograd's gradient is 0, the band's: ``clamp_min``
    with a number passes the gradient only where its input is above the bound.
    The sign keeps the orientation of the combination, so crossing from ``-eps`` to ``+eps`` flips
    the output's sign, as the unguarded formula does when ``s`` crosses zero.
    """
    sign = torch.where(weight_sum >= 0, 1.0, -1.0).to(weight_sum.dtype)
    return sign * weight_sum.abs().clamp_min(eps)


def linear_combination_reference(
    x: Tensor, weights: Tensor, candidates: Sequence[str], eps: float
) -> Tensor:
    """``sum_i w_i act_i(x) / guarded(sum_i w_i)`` (eq. 7) in plain torch ops.

    ``weights`` has shape ``(k,)`` (per layer) or ``(C, k)`` (per channel, broadcast over
    dimension 1 of ``x``), one weight per name in ``candidates``.
    """
    denominator = guarded_weight_sum(weights.sum(-1), eps)
    if weights.dim() == 2:
        shape = _channel_shape(x)
        columns = [weights[:, i].reshape(shape) for i in range(weights.shape[1])]
        denominator = denominator.reshape(shape)
    else:
        columns = [weights[i] for i in range(weights.shape[0])]
    numerator = torch.zeros_like(x)
    for w_i, name in zip(columns, candidates, strict=True):
        numerator = numerator + w_i * LC_CANDIDATES[name](x)
    return numerator / denominator


# ---------------------------------------------------------------------------------------------
# Fast kernels. Inputs are in a canonical layout so that few compiled graphs cover every layer:
# per layer, x is flattened to (M,) and parameters are (1,) / (rank, 1);
# per channel, x is (N, C, M) and parameters are (C, 1) / (rank, C, 1).


def _compute_dtype(x: Tensor, parameter: Tensor) -> torch.dtype:
    return torch.promote_types(
        torch.promote_types(x.dtype, parameter.dtype), torch.float32
    )


def _reduce_dims(x: Tensor) -> tuple[int, ...]:
    """Dimensions a parameter gradient sums over: all but the channel dimension."""
    return (0,) if x.dim() == 1 else (0, 2)


def _harmonics(t: Tensor, rank: int):
    """Yield ``(cos(n t), sin(n t))`` for n = 1..rank from one sin and one cos (angle addition)."""
    cos_1, sin_1 = torch.cos(t), torch.sin(t)
    cos_n, sin_n = cos_1, sin_1
    yield cos_n, sin_n
    for _ in range(rank - 1):
        cos_n, sin_n = cos_n * cos_1 - sin_n * sin_1, sin_n * cos_1 + cos_n * sin_1
        yield cos_n, sin_n


def _fourier_forward_kernel(
    x: Tensor, A: Tensor, omega: Tensor, a: Tensor, b: Tensor
) -> Tensor:
    dtype = _compute_dtype(x, A)
    xc = x.to(dtype)
    a, b = a.to(dtype), b.to(dtype)
    y = A.to(dtype)
    for n, (cos_n, sin_n) in enumerate(_harmonics(omega.to(dtype) * xc, a.shape[0])):
        y = y + a[n] * cos_n + b[n] * sin_n
    return y.to(x.dtype)


def _fourier_backward_kernel(
    grad_y: Tensor, x: Tensor, A: Tensor, omega: Tensor, a: Tensor, b: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    dtype = _compute_dtype(x, A)
    dims = _reduce_dims(x)
    xc, g = x.to(dtype), grad_y.to(dtype)
    omega_c, a_c, b_c = omega.to(dtype), a.to(dtype), b.to(dtype)
    # d act / d(omega x) = sum_n n (b_n cos(n omega x) - a_n sin(n omega x))
    dact_dt = torch.zeros_like(xc)
    grad_a, grad_b = [], []
    for n, (cos_n, sin_n) in enumerate(_harmonics(omega_c * xc, a.shape[0])):
        dact_dt = dact_dt + (n + 1) * (b_c[n] * cos_n - a_c[n] * sin_n)
        grad_a.append((g * cos_n).sum(dims))
        grad_b.append((g * sin_n).sum(dims))
    grad_x = g * omega_c * dact_dt
    grad_omega = (g * xc * dact_dt).sum(dims)
    return (
        grad_x.to(x.dtype),
        g.sum(dims).reshape(A.shape).to(A.dtype),
        grad_omega.reshape(omega.shape).to(omega.dtype),
        torch.stack(grad_a).reshape(a.shape).to(a.dtype),
        torch.stack(grad_b).reshape(b.shape).to(b.dtype),
    )


# Candidates in the fast kernels: (x, e) -> (value, derivative), with e = exp(-|x|).
# Compiled, sigmoid and tanh are evaluated from the shared e (the compiler drops it when unused):
# Inductor's CPU tanh and sigmoid cost about twice as much as one exp plus divisions (measured:
# LC forward 2.7 ms instead of 6.6 ms per 2M elements). These forms never overflow (e <= 1) and
# match torch's functions to about 2e-7 absolute in float32. Run eagerly, torch's own fused
# sigmoid and tanh are faster than the extra elementwise passes, so the eager kernels use those.
def _relu_terms(x: Tensor, e: Tensor | None) -> tuple[Tensor, Tensor]:
    return torch.relu(x), (x > 0).to(x.dtype)


def _sigmoid_terms_from_exp(x: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
    one_plus_e = 1 + e
    value = torch.where(x >= 0, 1.0, e) / one_plus_e
    return value, e / (one_plus_e * one_plus_e)


def _tanh_terms_from_exp(x: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
    e2 = e * e
    one_plus_e2 = 1 + e2
    value = torch.copysign((1 - e2) / one_plus_e2, x)
    return value, 4 * e2 / (one_plus_e2 * one_plus_e2)


def _sigmoid_terms(x: Tensor, e: Tensor | None) -> tuple[Tensor, Tensor]:
    value = torch.sigmoid(x)
    return value, value * (1 - value)


def _tanh_terms(x: Tensor, e: Tensor | None) -> tuple[Tensor, Tensor]:
    value = torch.tanh(x)
    return value, 1 - value * value


def _linear_terms(x: Tensor, e: Tensor | None) -> tuple[Tensor, Tensor]:
    return x, torch.ones_like(x)


_CompiledTerms = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
_COMPILED_CANDIDATES: dict[str, _CompiledTerms] = {
    "relu": _relu_terms,
    "sigmoid": _sigmoid_terms_from_exp,
    "tanh": _tanh_terms_from_exp,
    "linear": _linear_terms,
}
_EAGER_CANDIDATES: dict[str, _CompiledTerms] = {
    "relu": _relu_terms,
    "sigmoid": _sigmoid_terms,
    "tanh": _tanh_terms,
    "linear": _linear_terms,
}


def _candidate_terms(
    x: Tensor, candidates: tuple[str, ...]
) -> list[tuple[Tensor, Tensor]]:
    """``(value, derivative)`` of each candidate at ``x``, in the form suited to the mode."""
    if torch.compiler.is_compiling():
        e = torch.exp(-x.abs())
        return [_COMPILED_CANDIDATES[name](x, e) for name in candidates]
    return [_EAGER_CANDIDATES[name](x, None) for name in candidates]


@functools.lru_cache(maxsize=64)
def _lc_eps(eps: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``eps`` as a 0-d tensor of ``dtype``, the dtype in which the weight sum is formed.

    Why a tensor: dynamo specialises the kernels on the value of a float argument (one graph per
    ``eps``, counted against the recompile limit), and a float's precision inside the compiled
    graph is the compiler's choice. The reference compares the float32 ``|s|`` with the Python
    float ``eps``, which torch does in float32, i.e. against float32(eps); a tensor of the weights'
    dtype makes the kernels' comparison and clamp the same, also at the point ``|s| = eps`` itself.
    Cached: one small tensor per (eps, dtype, device), never modified.
    """
    return torch.tensor(eps, dtype=dtype, device=device)


def _lc_denominator(
    weights: Tensor, eps: Tensor, k: int
) -> tuple[list[Tensor], Tensor, Tensor]:
    """The weight columns ``w_i``, ``d = guard(s)`` and the mask ``d'(s) = 1`` of eq. (7).

    ``weights`` in the module layout, ``(k,)`` or ``(C, k)``; ``s = sum_i w_i``, ``d = sign(s)
    max(|s|, eps)`` with ``sign(0) = +1`` as in :func:`guarded_weight_sum`, both of shape ``(1,)``
    or ``(C, 1)``, as is each column ``w_i`` (so they broadcast over the canonical ``x``, ``(M,)``
    or ``(N, C, M)``). The derivative is ``d'(s) = 1`` where ``|s| > eps`` and 0 where
    ``|s| <= eps``: what autograd gives for :func:`guarded_weight_sum`, where ``abs`` contributes
    ``sgn(s)``, which times the sign factor is 1 for ``s != 0`` (the band contains ``s = 0``), and
    ``clamp_min`` with a number passes the gradient only where ``|s| > eps``, so the kink
    ``|s| = eps`` itself gets the band's derivative 0. Computed in the weights' dtype (at least
    float32), as the reference is; ``eps`` is a 0-d tensor of that dtype (:func:`_lc_eps`).

    Written for the compiler (the sum over the ``k`` columns spelled out instead of
    ``w.sum(-1)``, ``d`` as ``sign * clamped`` instead of ``where(s >= 0, clamped, -clamped)``):
    Inductor gives a reduction, or a small tensor read twice, a loop of its own, and with
    ``cpp.dynamic_threads`` every loop is an OpenMP loop, whose barrier waits for a descheduled
    thread when other processes hold the cores. This way the compiler recomputes ``d`` from the
    weights inside the pass over ``x``, and the per-layer kernels stay one loop each, as they were
    with the normalisation outside them. (Measured, x of shape (128, 32, 32, 32) on 2 cores: on an
    idle machine both forms run as fast as the old code; under a load of 4-6 the ``w.sum(-1)``
    form's forward+backward took 1.4-2x as long, this form the same as the old code.)
    """
    w = weights.to(torch.promote_types(weights.dtype, torch.float32))
    columns = [w[..., i : i + 1] for i in range(k)]
    s = columns[0]
    for column in columns[1:]:
        s = s + column
    magnitude = s.abs()
    sign = torch.where(s >= 0, 1.0, -1.0).to(s.dtype)
    return columns, sign * magnitude.clamp_min(eps), magnitude > eps


def _lc_factors(
    columns: list[Tensor], denominator: Tensor
) -> tuple[list[Tensor], Tensor | None]:
    """The factors of ``act_i`` in the pass over ``x``, and the divisor of the sum, if any.

    Compiled: ``(w_i, d)``, ``sum_i w_i act_i / d`` as in the reference; one division per element,
    and no small tensor ``c_i = w_i / d`` that the compiler would give a loop of its own (see
    :func:`_lc_denominator`). Eager: ``(w_i / d, None)``: there every elementwise operation is a
    pass over memory, so the division goes to the tiny columns instead.
    """
    if torch.compiler.is_compiling():
        return columns, denominator
    return [w_i / denominator for w_i in columns], None


def _lc_forward_kernel(
    x: Tensor, weights: Tensor, eps: Tensor, candidates: tuple[str, ...]
) -> Tensor:
    """``y = sum_i w_i act_i(x) / d``, ``d = guard(sum_i w_i)`` (eq. 7)."""
    dtype = _compute_dtype(x, weights)
    columns, denominator, _ = _lc_denominator(weights, eps, len(candidates))
    factors, divisor = _lc_factors(
        [w_i.to(dtype) for w_i in columns], denominator.to(dtype)
    )
    terms = _candidate_terms(x.to(dtype), candidates)
    y = factors[0] * terms[0][0]
    for i in range(1, len(candidates)):
        y = y + factors[i] * terms[i][0]
    if divisor is not None:
        y = y / divisor
    return y.to(x.dtype)


def _lc_backward_kernel(
    grad_y: Tensor, x: Tensor, weights: Tensor, eps: Tensor, candidates: tuple[str, ...]
) -> tuple[Tensor, Tensor]:
    """``dL/dx = g sum_i w_i act_i'(x) / d`` and the gradient with respect to the raw weights.

    With ``G_i = sum_x g act_i(x)`` (the gradient with respect to ``c_i = w_i / d``; one
    reduction per candidate in the pass over ``x``) and
    ``dc_i/dw_k = delta_ik / d - w_i d'(s) / d^2``: ``dL/dw_k = (G_k - d'(s) sum_i c_i G_i) / d``,
    on the tiny reduced tensors. Outside the guard band that is eq. (8) summed over ``x``,
    ``sum_x g (act_k - act) / s``; inside it and at its edge ``|s| = eps`` the denominator counts as
    the constant ``+-eps`` and ``dL/dw_k = G_k / d``.
    """
    dtype = _compute_dtype(x, weights)
    dims = _reduce_dims(x)
    columns, denominator, active = _lc_denominator(weights, eps, len(candidates))
    denominator = denominator.to(dtype)
    factors, divisor = _lc_factors([w_i.to(dtype) for w_i in columns], denominator)
    xc, g = x.to(dtype), grad_y.to(dtype)
    slope = torch.zeros_like(xc)
    grad_c = []
    for i, (value, derivative) in enumerate(_candidate_terms(xc, candidates)):
        slope = slope + factors[i] * derivative
        grad_c.append((g * value).sum(dims).reshape(denominator.shape))
    grad_x = g * slope
    # sum_i c_i G_i
    projection = factors[0] * grad_c[0]
    for i in range(1, len(candidates)):
        projection = projection + factors[i] * grad_c[i]
    if divisor is not None:
        grad_x, projection = grad_x / divisor, projection / divisor
    correction = torch.where(active, projection, 0.0)
    # columns (1,) / (C, 1) side by side: the module layout (k,) / (C, k)
    grad_weights = torch.cat(
        [(G_i - correction) / denominator for G_i in grad_c], dim=-1
    )
    return grad_x.to(x.dtype), grad_weights.to(weights.dtype)


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
        _IMPLEMENTATIONS_RUN.add("compiled")
        return result

    def _eager(self, kernel: Callable, *args: Any):
        result = kernel(*args)
        _IMPLEMENTATIONS_RUN.add("eager")
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


def kernel_report() -> dict[str, Any]:
    """Which implementations of the trainable activations ran in this process.

    Returns ``{"implementations": [...], "compile_failure": ...}``: ``implementations`` is the
    sorted list of those among ``"compiled"``, ``"eager"`` and ``"reference"`` that produced an
    activation output (or gradient) since the process started or :func:`reset_kernel_report`:
    ``"compiled"`` for a kernel call that ran compiled, ``"eager"`` for one run eagerly (``impl``
    ``"eager"``, or ``"auto"`` after a compiler failure), ``"reference"`` for a module forward
    with ``impl="reference"``. ``compile_failure`` is ``None``, or ``"ExcType: first line of the
    message"`` of the compiler failure that switched ``"auto"`` to the eager kernels (for good:
    it stays after a reset). A network without Fourier or LC activations (ReLU) reports
    ``{"implementations": [], "compile_failure": None}``.
    """
    return {
        "implementations": sorted(_IMPLEMENTATIONS_RUN),
        "compile_failure": _COMPILER.failure,
    }


def reset_kernel_report() -> None:
    """Forget which implementations ran (:func:`trainact.training.train.fit` calls it at the start of each
    run, so that a summary reports that run's). The compiler's failure state is kept: it still
    decides what ``"auto"`` runs."""
    _IMPLEMENTATIONS_RUN.clear()


def _run_kernel(kernel: Callable, impl: str, *args: Any):
    """Run ``kernel`` with autocast off, on detached arguments.

    Detaching turns views (the canonical reshapes) into plain tensors, so that the compiled
    kernels do not guard on the views' bases, whose shapes differ from layer to layer.
    """
    args = tuple(arg.detach() if isinstance(arg, Tensor) else arg for arg in args)
    with torch.autocast(device_type=args[0].device.type, enabled=False):
        return _COMPILER(kernel, impl, *args)


class _FourierFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, A, omega, a, b, impl):
        ctx.save_for_backward(x, A, omega, a, b)
        ctx.impl = impl
        return _run_kernel(_fourier_forward_kernel, impl, x, A, omega, a, b)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        grads = _run_kernel(
            _fourier_backward_kernel, ctx.impl, grad_y.contiguous(), *ctx.saved_tensors
        )
        return (*grads, None)


class _LinearCombinationFunction(torch.autograd.Function):
    """``x`` (canonical layout), raw ``weights`` (module layout) -> eq. (7); one autograd node."""

    @staticmethod
    def forward(ctx, x, weights, eps, candidates, impl):
        ctx.save_for_backward(x, weights)
        ctx.eps, ctx.candidates, ctx.impl = eps, candidates, impl
        return _run_kernel(_lc_forward_kernel, impl, x, weights, eps, candidates)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        x, weights = ctx.saved_tensors
        grad_x, grad_weights = _run_kernel(
            _lc_backward_kernel,
            ctx.impl,
            grad_y.contiguous(),
            x,
            weights,
            ctx.eps,
            ctx.candidates,
        )
        return grad_x, grad_weights, None, None, None


def _canonical_input(x: Tensor, per_channel: bool) -> Tensor:
    if not per_channel:
        return x.reshape(-1)
    return x.reshape(x.shape[0], x.shape[1], math.prod(x.shape[2:]))


def fourier_fast(
    x: Tensor, A: Tensor, omega: Tensor, a: Tensor, b: Tensor, impl: str = "auto"
) -> Tensor:
    """Same value as :func:`fourier_reference` (module parameter layout), computed by the fast kernels."""
    if a.dim() == 2:  # per channel: (C,) -> (C, 1), (C, rank) -> (rank, C, 1)
        layout = (
            A.reshape(-1, 1),
            omega.reshape(-1, 1),
            a.t().unsqueeze(-1),
            b.t().unsqueeze(-1),
        )
    else:  # per layer: (1,) -> (1,), (rank,) -> (rank, 1)
        layout = (A.reshape(1), omega.reshape(1), a.reshape(-1, 1), b.reshape(-1, 1))
    y = _FourierFunction.apply(_canonical_input(x, a.dim() == 2), *layout, impl)
    return y.view(x.shape)


def linear_combination_fast(
    x: Tensor,
    weights: Tensor,
    candidates: Sequence[str],
    eps: float,
    impl: str = "auto",
) -> Tensor:
    """Same value as :func:`linear_combination_reference`, computed by the fast kernels.

    The kernels take the raw ``weights`` and apply the normalisation ``w / guarded(sum w)``
    themselves; the backward returns the gradient with respect to ``w`` through the guard (see
    :func:`_lc_backward_kernel`), equal to autograd's for the reference on both sides of the band
    and at ``|sum w| = eps``. Doing this inside the kernels saves the dozen tiny autograd ops the
    normalisation would otherwise add to every LC layer's forward and backward.
    """
    per_channel = weights.dim() == 2
    eps = _lc_eps(
        float(eps), torch.promote_types(weights.dtype, torch.float32), weights.device
    )
    y = _LinearCombinationFunction.apply(
        _canonical_input(x, per_channel), weights, eps, tuple(candidates), impl
    )
    return y.view(x.shape)


# ---------------------------------------------------------------------------------------------
# Modules


def _check_choice(what: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ValueError(
            f"unknown {what} {value!r}; allowed: {', '.join(map(repr, allowed))}"
        )


def _check_channels(per_channel: bool, num_channels: int | None) -> None:
    if per_channel and (not isinstance(num_channels, int) or num_channels < 1):
        raise ValueError(
            f"per_channel=True needs num_channels >= 1, got {num_channels!r}"
        )


class _TrainableActivation(nn.Module):
    """Shared plumbing: input shape check, implementation dispatch, parameter export, curves."""

    per_channel: bool
    num_channels: int | None
    impl: str

    def _check_input(self, x: Tensor) -> None:
        if self.per_channel and (x.dim() < 2 or x.shape[1] != self.num_channels):
            raise ValueError(
                f"{type(self).__name__} with {self.num_channels} channels expects input (N, "
                f"{self.num_channels}, *), got shape {tuple(x.shape)}"
            )

    def learned_parameters(self) -> dict[str, list]:
        """The parameters and buffers (Fourier's fixed ``scale``) as plain (nested) lists of floats,
        keyed by name: everything that defines the learned function.

        ``{k: torch.tensor(v) for k, v in m.learned_parameters().items()}`` is a state dict
        that ``load_state_dict`` accepts (round trip).
        """
        return {name: p.detach().cpu().tolist() for name, p in self.state_dict().items()}

    @torch.no_grad()
    def curve(self, x: Tensor) -> Tensor:
        """The activation evaluated at the points ``x`` (shape ``(P,)``), without gradient.

        Returns shape ``(P,)`` per layer, ``(C, P)`` per channel (one curve per channel), on the
        parameters' device, in the parameters' dtype. Uses the reference formula.
        """
        parameter = next(self.parameters())
        points = (
            x.detach().to(device=parameter.device, dtype=parameter.dtype).reshape(-1)
        )
        if not self.per_channel:
            return self._reference(points)
        grid = points.reshape(1, 1, -1).expand(1, self.num_channels, -1)
        return self._reference(grid)[0]

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if self.impl == "reference":
            dtype = torch.promote_types(x.dtype, torch.float32)
            with torch.autocast(device_type=x.device.type, enabled=False):
                y = self._reference(x.to(dtype)).to(x.dtype)
            _IMPLEMENTATIONS_RUN.add("reference")
            return y
        return self._fast(x)

    def _reference(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _fast(self, x: Tensor) -> Tensor:
        raise NotImplementedError


class Fourier(_TrainableActivation):
    r"""Trainable truncated Fourier series activation (paper eq. 2).

    .. math::
        \mathrm{act}(x) = A + \sum_{n=1}^{\mathrm{rank}} a_n \cos(n \omega x) + b_n \sin(n \omega x)

    with trainable :math:`A, \omega, a_n, b_n` (the paper uses rank 5, one set per layer).

    Gradients: the paper's eqs. (4)-(5) state :math:`\partial act/\partial a_n = -n\omega\sin(n\omega x)`
    and :math:`\partial act/\partial b_n = n\omega\cos(n\omega x)`; those are the derivatives with respect
    to :math:`x` of the terms :math:`\cos(n\omega x)` and :math:`\sin(n\omega x)`, not the parameter
    gradients. The correct ones, used here, are :math:`\partial act/\partial a_n = \cos(n\omega x)`,
    :math:`\partial act/\partial b_n = \sin(n\omega x)`, :math:`\partial act/\partial A = 1`,
    :math:`\partial act/\partial\omega = x \sum_n n (b_n\cos(n\omega x) - a_n\sin(n\omega x))` (eq. (6)
    pairs a_n with cos and b_n with sin instead) and :math:`\partial act/\partial x = \omega\sum_n n(b_n\cos(n\omega x) - a_n\sin(n\omega x))`.
    The fast implementation gets all harmonics from one ``sin`` and one ``cos`` by angle addition.

    The series is periodic with period :math:`2\pi/\omega`: far outside the interval it was fitted
    on, it repeats (it does not keep growing like ReLU).

    Initialisation (unstated in the paper):

    ``"calibrated"``
        the ``"relu_fit"`` start below, applied at the layer's own scale:
        :math:`\mathrm{act}(x) = s\,g(x/s)` with :math:`g` the series and :math:`s` a fixed buffer
        (``scale``, not trained) that maps ``init_interval`` onto ``[-k r, k r]``, ``r`` the root mean
        square of this layer's input and ``k = calibration_sigmas`` (default 3).
        :func:`trainact.nn.calibration.calibrate` measures ``r`` on a seeded batch of training images,
        layer by layer from the input, and calls :meth:`set_scale`. At PyTorch's default weights and
        ``[0, 1]`` pixels ``r`` is about 0.3 in the first layer and 0.04-0.13 in later ones, where the
        unscaled fit on ``[-4, 4]`` is almost a straight line. ``s`` equals 1 until calibrated. The
        function class is the paper's (eq. 2 with coefficients ``s A, s a_n, s b_n`` and frequency
        ``omega / s``); only the optimiser sees other magnitudes (see the module's constants).
        Not the default: RMSProp grows the pre-activations several-fold in the first epoch, they
        leave the narrow interval, and the periodic series scrambles them (measured: the middle
        Fourier-CNN at chance accuracy after one epoch, for k = 3, 6, 8 and, on another seed, 12).
    ``"relu_fit"`` (default)
        least-squares fit of the series to ReLU on ``init_interval`` (default ``[-4, 4]``,
        4001 grid points), with :math:`\omega = 2\pi / (1.5 \cdot \text{width})` (``pi/6`` on
        ``[-4, 4]``) unless ``omega`` is given. The network thus starts as the ReLU network it is
        compared with. The period of 1.5 interval widths avoids both the Gibbs ringing of a period of
        one width and the ill-conditioning of two; the fit is within 0.093 of ReLU on ``[-4, 4]``
        (max error ``0.0233 * width / 2`` for rank 5). Pre-activations of the paper CNNs with
        ``[0, 1]`` pixels and PyTorch's default initialisation lie within ``[-1.7, 1.7]`` in the
        first layer and ``[-0.35, 0.35]`` in the later ones (measured, all sizes); ``[-4, 4]``
        leaves room for their growth during training, at the price of a smoother kink than a
        narrower interval would give (error at 0: 0.093 on ``[-4, 4]``, 0.047 on ``[-2, 2]``).
    ``"random"``
        :math:`A = 0`, :math:`a_n, b_n \sim \mathcal N(0, 0.1^2)`, :math:`\omega = 1` (or ``omega``).

    Args:
        rank: number of harmonics.
        per_channel: one parameter set per channel (dimension 1 of the input) instead of one per layer.
        num_channels: the number of channels ``C``; required with ``per_channel=True``.
        init: ``"calibrated"``, ``"relu_fit"`` or ``"random"``.
        init_interval: ``(low, high)`` interval of the ReLU fit (before the ``"calibrated"`` scale).
        calibration_sigmas: ``k`` of the calibrated interval ``[-k r, k r]``.
        omega: initial frequency; ``None`` picks the one described above.
        impl: ``"auto"``, ``"compiled"``, ``"eager"`` or ``"reference"`` (see module docstring).

    Shape:
        - Input: :math:`(N, *)`; with ``per_channel=True``: :math:`(N, C, *)`.
        - Output: same shape and dtype as the input.

    Attributes:
        A, omega: shape ``(1,)``, per channel ``(C,)``.
        a, b: shape ``(rank,)``, per channel ``(C, rank)``.
        scale: buffer of shape ``(1,)``, the fixed input/output scale ``s`` (1 unless calibrated).
        fit_interval: ``init_interval`` times ``scale``, the inputs on which the layer started as the
            ReLU fit (``None`` for ``"random"``).
    """

    def __init__(
        self,
        rank: int = 5,
        *,
        per_channel: bool = False,
        num_channels: int | None = None,
        init: str = "relu_fit",
        init_interval: Sequence[float] = (-4.0, 4.0),
        calibration_sigmas: float = CALIBRATION_SIGMAS,
        omega: float | None = None,
        impl: str = "auto",
    ):
        super().__init__()
        if not isinstance(rank, int) or rank < 1:
            raise ValueError(f"Fourier rank must be an integer >= 1, got {rank!r}")
        _check_channels(per_channel, num_channels)
        _check_choice("Fourier init", init, FOURIER_INITS)
        _check_choice("activation impl", impl, IMPLS)
        low, high = (float(v) for v in init_interval)
        if not low < high:
            raise ValueError(
                f"Fourier init_interval must be (low, high) with low < high, got {init_interval!r}"
            )
        if omega is not None and not float(omega) > 0:
            raise ValueError(f"Fourier omega must be > 0, got {omega!r}")
        if not (math.isfinite(float(calibration_sigmas)) and float(calibration_sigmas) > 0):
            raise ValueError(f"Fourier calibration_sigmas must be > 0, got {calibration_sigmas!r}")
        self.rank, self.per_channel, self.num_channels = (
            rank,
            per_channel,
            num_channels if per_channel else None,
        )
        self.init, self.init_interval, self.impl = init, (low, high), impl
        self.calibration_sigmas = float(calibration_sigmas)

        if init == "random":
            w = omega if omega is not None else RANDOM_INIT_OMEGA
            A0 = 0.0
            a0 = torch.randn(rank) * RANDOM_INIT_STD
            b0 = torch.randn(rank) * RANDOM_INIT_STD
        else:
            w = (
                omega
                if omega is not None
                else 2 * math.pi / (RELU_FIT_PERIOD_PER_WIDTH * (high - low))
            )
            A0, a0, b0 = relu_fit(rank, w, (low, high))
            a0, b0 = a0.float(), b0.float()
        groups = num_channels if per_channel else None
        self.A = nn.Parameter(self._grouped(torch.tensor([A0]), groups))
        self.omega = nn.Parameter(self._grouped(torch.tensor([float(w)]), groups))
        self.a = nn.Parameter(self._grouped(a0, groups))
        self.b = nn.Parameter(self._grouped(b0, groups))
        self.register_buffer("scale", torch.ones(1))

    @property
    def fit_interval(self) -> tuple[float, float] | None:
        """The inputs on which the layer started as the ReLU fit: ``init_interval * scale``."""
        if self.init == "random":
            return None
        s = float(self.scale)
        return (self.init_interval[0] * s, self.init_interval[1] * s)

    @torch.no_grad()
    def set_scale(self, scale: float) -> None:
        """Set the fixed scale ``s`` of ``s * g(x / s)`` (``"calibrated"``; see the class doc)."""
        scale = float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"Fourier scale must be finite and > 0, got {scale!r}")
        self.scale.fill_(scale)

    def scale_for(self, input_rms: float) -> float:
        """The ``scale`` that maps ``init_interval`` onto ``[-k r, k r]`` for ``r = input_rms``."""
        return self.calibration_sigmas * float(input_rms) / max(abs(v) for v in self.init_interval)

    @staticmethod
    def _grouped(value: Tensor, groups: int | None) -> Tensor:
        """Per layer: ``value`` itself; per channel: ``(1,)`` -> ``(C,)``, ``(rank,)`` -> ``(C, rank)``."""
        value = value.float()
        if groups is None:
            return value.clone()
        if value.shape == (1,):
            return value.expand(groups).clone()
        return value.expand(groups, -1).clone()

    def _scaled_parameters(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return fourier_at_scale(self.A, self.omega, self.a, self.b, self.scale)

    def _reference(self, x: Tensor) -> Tensor:
        return fourier_reference(x, *self._scaled_parameters())

    def _fast(self, x: Tensor) -> Tensor:
        return fourier_fast(x, *self._scaled_parameters(), self.impl)

    def extra_repr(self) -> str:
        channels = f", num_channels={self.num_channels}" if self.per_channel else ""
        calibration = f", calibration_sigmas={self.calibration_sigmas:g}" if self.init == "calibrated" else ""
        return (
            f"rank={self.rank}, per_channel={self.per_channel}{channels}, init={self.init!r}"
            f"{calibration}, impl={self.impl!r}"
        )


def relu_fit(
    rank: int, omega: float, interval: Sequence[float]
) -> tuple[float, Tensor, Tensor]:
    """Least-squares ``A, a, b`` (float64) of the rank-``rank`` series with frequency ``omega``
    fitted to ReLU on ``RELU_FIT_GRID_POINTS`` equally spaced points of ``interval``."""
    low, high = interval
    x = torch.linspace(low, high, RELU_FIT_GRID_POINTS, dtype=torch.float64)
    n = torch.arange(1, rank + 1, dtype=torch.float64)
    phase = omega * x[:, None] * n
    basis = torch.cat(
        [torch.ones_like(x)[:, None], torch.cos(phase), torch.sin(phase)], dim=1
    )
    solution = torch.linalg.lstsq(basis, torch.relu(x)[:, None]).solution[:, 0]
    return float(solution[0]), solution[1 : rank + 1], solution[rank + 1 :]


class LinearCombination(_TrainableActivation):
    r"""Trainable weighted mean of candidate activations (paper eq. 7).

    .. math::
        \mathrm{act}(x) = \frac{\sum_{i=1}^{k} w_i\, \mathrm{act}_i(x)}{\operatorname{guard}(\sum_{i=1}^{k} w_i)},
        \qquad \operatorname{guard}(s) = \operatorname{sign}(s) \max(|s|, \varepsilon),\ \operatorname{sign}(0) = +1

    with trainable weights :math:`w_i` (candidates of the paper: ReLU, sigmoid, tanh, linear).

    Near-zero weight sum: eq. (7) divides by :math:`\sum_i w_i`, which training can drive through 0.
    The guard replaces :math:`|s| < \varepsilon` by :math:`\varepsilon` with the sign of :math:`s`
    (see :func:`guarded_weight_sum`): outputs stay finite (at most :math:`1/\varepsilon` times the
    numerator) and gradients are exact for the guarded function (eq. 8 where :math:`|s| > \varepsilon`;
    :math:`\partial act/\partial w_k = act_k(x)/(\pm\varepsilon)` inside the guard band and at its
    edge :math:`|s| = \varepsilon`, as autograd gives for the reference). The fast kernels compute
    the normalisation and its gradient themselves (see :func:`_lc_backward_kernel`). With the
    default initialisation :math:`s = 1`, far from the band.

    Initialisation: ``"uniform"`` = all :math:`w_i = 1/k` (the plain average); ``"one_hot:<name>"`` =
    weight 1 on that candidate, 0 elsewhere (starts as exactly that activation).

    Args:
        candidates: names from ``LC_CANDIDATES`` (``relu``, ``sigmoid``, ``tanh``, ``linear``).
        per_channel: one weight vector per channel (dimension 1 of the input).
        num_channels: the number of channels ``C``; required with ``per_channel=True``.
        init: ``"uniform"`` or ``"one_hot:<name>"``.
        eps: smallest magnitude of the denominator (default 0.01).
        impl: ``"auto"``, ``"compiled"``, ``"eager"`` or ``"reference"`` (see module docstring).

    Shape:
        - Input: :math:`(N, *)`; with ``per_channel=True``: :math:`(N, C, *)`.
        - Output: same shape and dtype as the input.

    Attributes:
        weights: shape ``(k,)``, per channel ``(C, k)``, in the order of ``candidates``.
    """

    def __init__(
        self,
        candidates: Sequence[str] = PAPER_LC_CANDIDATES,
        *,
        per_channel: bool = False,
        num_channels: int | None = None,
        init: str = "uniform",
        eps: float = LC_DEFAULT_EPS,
        impl: str = "auto",
    ):
        super().__init__()
        candidates = tuple(candidates)
        if not candidates:
            raise ValueError("LinearCombination needs at least one candidate")
        for name in candidates:
            _check_choice("LC candidate", name, tuple(LC_CANDIDATES))
        if len(set(candidates)) != len(candidates):
            raise ValueError(f"LC candidates must be distinct, got {candidates!r}")
        _check_channels(per_channel, num_channels)
        _check_choice("activation impl", impl, IMPLS)
        if not float(eps) > 0:
            raise ValueError(f"LC eps must be > 0, got {eps!r}")
        self.candidates, self.eps, self.impl, self.init = (
            candidates,
            float(eps),
            impl,
            init,
        )
        self.per_channel, self.num_channels = per_channel, (
            num_channels if per_channel else None
        )

        if init == "uniform":
            initial = torch.full((len(candidates),), 1.0 / len(candidates))
        elif (
            init.startswith("one_hot:") and init.removeprefix("one_hot:") in candidates
        ):
            initial = torch.zeros(len(candidates))
            initial[candidates.index(init.removeprefix("one_hot:"))] = 1.0
        else:
            allowed = ["uniform"] + [f"one_hot:{name}" for name in candidates]
            _check_choice("LC init", init, allowed)
        if per_channel:
            initial = initial.expand(num_channels, -1).clone()
        self.weights = nn.Parameter(initial)

    def _reference(self, x: Tensor) -> Tensor:
        return linear_combination_reference(x, self.weights, self.candidates, self.eps)

    def _fast(self, x: Tensor) -> Tensor:
        return linear_combination_fast(
            x, self.weights, self.candidates, self.eps, self.impl
        )

    def extra_repr(self) -> str:
        channels = f", num_channels={self.num_channels}" if self.per_channel else ""
        return (
            f"candidates={self.candidates}, per_channel={self.per_channel}{channels}, "
            f"init={self.init!r}, eps={self.eps}, impl={self.impl!r}"
        )


class GainReLU(_TrainableActivation):
    r"""ReLU times a trainable gain: the control for the trainable activations' extra parameters.

    .. math::
        \mathrm{act}(x) = \Big(\sum_{i=1}^{k} g_i\Big)\, \mathrm{relu}(x)

    with trainable gains :math:`g_i`, as many per layer (or per channel) as a
    :class:`LinearCombination` with ``k`` candidates has weights, so that a ReLU network with these
    layers has exactly the LC network's parameter count. It isolates one explanation of a
    difference between the ReLU CNN and a trainable-activation CNN: extra trainable parameters
    that can rescale a layer's output. The ``k`` gains act only through their sum (each gets the
    same gradient, ``sum_x grad_y relu(x)``); under RMSProp each moves by about the learning rate
    per step, so the sum moves ``k`` times as fast, as LC's ``k`` weights together move its mixture.

    Start: :math:`g_i = 1/k`, whose sum is exactly 1 in float32 for every ``k <= 4`` (the number of
    LC candidates), so the layer starts bit for bit as ``relu``.

    Args:
        num_gains: ``k``, the number of LC candidates the layer matches.
        per_channel: one gain vector per channel (dimension 1 of the input), as LC's option.
        num_channels: the number of channels ``C``; required with ``per_channel=True``.

    Shape:
        - Input: :math:`(N, *)`; with ``per_channel=True``: :math:`(N, C, *)`.
        - Output: same shape and dtype as the input (the product is formed in at least float32).

    Attributes:
        gains: shape ``(k,)``, per channel ``(C, k)``.
    """

    def __init__(self, num_gains: int, *, per_channel: bool = False, num_channels: int | None = None):
        super().__init__()
        if not isinstance(num_gains, int) or num_gains < 1:
            raise ValueError(f"GainReLU num_gains must be an integer >= 1, got {num_gains!r}")
        _check_channels(per_channel, num_channels)
        self.num_gains, self.per_channel = num_gains, per_channel
        self.num_channels = num_channels if per_channel else None
        initial = torch.full((num_gains,), 1.0 / num_gains)
        if per_channel:
            initial = initial.expand(num_channels, -1).clone()
        self.gains = nn.Parameter(initial)

    def _reference(self, x: Tensor) -> Tensor:
        gain = self.gains.sum(-1)
        if self.per_channel:
            gain = gain.reshape(_channel_shape(x))
        dtype = torch.promote_types(x.dtype, gain.dtype)
        return (torch.relu(x).to(dtype) * gain.to(dtype)).to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        # Plain autograd (two cheap pointwise ops); no kernel of its own, no impl to choose.
        self._check_input(x)
        return self._reference(x)

    def extra_repr(self) -> str:
        channels = f", num_channels={self.num_channels}" if self.per_channel else ""
        return f"num_gains={self.num_gains}, per_channel={self.per_channel}{channels}"


# ---------------------------------------------------------------------------------------------
# Factory used by the models


def _keyword_options(cls: type) -> tuple[str, ...]:
    return tuple(
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and name != "num_channels" and p.kind is not p.VAR_KEYWORD
    )


def _lc_shape_options(model_cfg: dict, num_channels: int) -> dict[str, Any]:
    """The LC options that decide its weights' shape (``candidates``, ``per_channel``), for a layer
    of ``num_channels``: what :class:`GainReLU` matches (LC's own defaults where unset)."""
    options = model_cfg.get("lc") or {}
    shape = {key: options[key] for key in ("candidates", "per_channel") if key in options}
    if shape.get("per_channel"):
        shape["num_channels"] = num_channels
    return shape


def make_activation(name: str, num_channels: int, model_cfg: dict) -> nn.Module:
    """The activation module ``name`` (``relu``, ``fourier`` or ``lc``) for a layer of ``num_channels``.

    ``model_cfg`` keys read here (other keys belong to the model and are ignored):
    ``"fourier"``: dict of :class:`Fourier` keyword arguments; ``"lc"``: dict of
    :class:`LinearCombination` keyword arguments; ``"impl"``: default implementation for both
    (a per-activation ``"impl"`` in those dicts wins); ``"relu_gain"``: ``relu`` becomes a
    :class:`GainReLU` with as many gains as the ``"lc"`` settings give LC weights (one per
    candidate, per channel with LC's ``per_channel``). ``num_channels`` is used with ``per_channel``.
    Raises ``ValueError`` naming an unknown activation, option or value.
    """
    _check_choice("activation", name, ACTIVATIONS)
    if name == "relu":
        if not model_cfg.get("relu_gain", False):
            return nn.ReLU()
        lc = LinearCombination(**_lc_shape_options(model_cfg, num_channels))
        return GainReLU(lc.weights.shape[-1], per_channel=lc.per_channel, num_channels=lc.num_channels)
    cls, section = (
        (Fourier, "fourier") if name == "fourier" else (LinearCombination, "lc")
    )
    options = model_cfg.get(section) or {}
    if not isinstance(options, dict):
        raise ValueError(
            f"model config {section!r} must be a dict of options, got {options!r}"
        )
    allowed = _keyword_options(cls)
    for key in options:
        _check_choice(f"{section} option", key, allowed)
    kwargs = {"impl": model_cfg.get("impl", "auto"), **options}
    if kwargs.get("per_channel"):
        kwargs["num_channels"] = num_channels
    return cls(**kwargs)
