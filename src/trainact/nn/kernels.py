"""Fast kernels of the trainable activations, used for training.

Each activation's fast implementation is a custom :class:`torch.autograd.Function` whose forward
and backward are each one pure, pointwise(+reduction) kernel function. The forward saves only its
input ``x``; the backward recomputes the cheap pointwise terms (``sin``/``cos`` or the candidate
functions) instead of storing them, and returns all parameter gradients as reductions from the
same pass. The linear combination's kernels take the raw weights and normalise them themselves
(``w / guard(sum w)``, its derivative written out by hand), so an LC layer adds a single node to
the autograd graph. Each kernel is ``torch.compile``-d once per process (module-level functions
shared by every layer; :mod:`trainact.nn.kernel_compiler`), which fuses it into one loop over
memory; that is what makes a Fourier-CNN train at a useful fraction of the ReLU network's speed on
a CPU (see ``trainact bench``). Values and gradients equal those of the reference formulas
(:mod:`trainact.nn.reference`) up to float rounding.

Precision: the kernels compute in ``float32`` at least (``float64`` inputs stay ``float64``) and
return the input's dtype. Under autocast (``bfloat16``/``float16`` convolution outputs) the Fourier
series must not be evaluated in half precision: ``sin(n w x)`` of a bf16 ``x`` is wrong by up to about
0.5 on outputs of magnitude 1, so inputs and parameters are upcast inside the kernel, autocast is
disabled there, and the result is cast back to the input dtype.

Shapes: :func:`fourier_fast` and :func:`linear_combination_fast` map ``(N, *)`` to the same shape,
with the parameters in the modules' layout (per channel: leading dimension ``C``, broadcast over
dimension 1 of an ``(N, C, *)`` input).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from trainact.nn.candidates import candidate_terms
from trainact.nn.kernel_compiler import run_kernel_as

# ---------------------------------------------------------------------------------------------
# Fast kernels. Inputs are in a canonical layout so that few compiled graphs cover every layer:
# per layer, x is flattened to (M,) and parameters are (1,) / (rank, 1);
# per channel, x is (N, C, M) and parameters are (C, 1) / (rank, C, 1).


def _compute_dtype(x: Tensor, parameter: Tensor) -> torch.dtype:
    return torch.promote_types(torch.promote_types(x.dtype, parameter.dtype), torch.float32)


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


def _fourier_forward_kernel(x: Tensor, A: Tensor, omega: Tensor, a: Tensor, b: Tensor) -> Tensor:
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


def _lc_denominator(weights: Tensor, eps: Tensor, k: int) -> tuple[list[Tensor], Tensor, Tensor]:
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


def _lc_factors(columns: list[Tensor], denominator: Tensor) -> tuple[list[Tensor], Tensor | None]:
    """The factors of ``act_i`` in the pass over ``x``, and the divisor of the sum, if any.

    Compiled: ``(w_i, d)``, ``sum_i w_i act_i / d`` as in the reference; one division per element,
    and no small tensor ``c_i = w_i / d`` that the compiler would give a loop of its own (see
    :func:`_lc_denominator`). Eager: ``(w_i / d, None)``: there every elementwise operation is a
    pass over memory, so the division goes to the tiny columns instead.
    """
    if torch.compiler.is_compiling():
        return columns, denominator
    return [w_i / denominator for w_i in columns], None


def _lc_forward_kernel(x: Tensor, weights: Tensor, eps: Tensor, candidates: tuple[str, ...]) -> Tensor:
    """``y = sum_i w_i act_i(x) / d``, ``d = guard(sum_i w_i)`` (eq. 7)."""
    dtype = _compute_dtype(x, weights)
    columns, denominator, _ = _lc_denominator(weights, eps, len(candidates))
    factors, divisor = _lc_factors([w_i.to(dtype) for w_i in columns], denominator.to(dtype))
    terms = candidate_terms(x.to(dtype), candidates)
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
    for i, (value, derivative) in enumerate(candidate_terms(xc, candidates)):
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
    grad_weights = torch.cat([(G_i - correction) / denominator for G_i in grad_c], dim=-1)
    return grad_x.to(x.dtype), grad_weights.to(weights.dtype)


def _run_kernel(kernel: Callable, impl: str, *args: Any):
    """Run ``kernel`` with autocast off, on detached arguments.

    Detaching turns views (the canonical reshapes) into plain tensors, so that the compiled
    kernels do not guard on the views' bases, whose shapes differ from layer to layer.
    """
    args = tuple(arg.detach() if isinstance(arg, Tensor) else arg for arg in args)
    with torch.autocast(device_type=args[0].device.type, enabled=False):
        return run_kernel_as(kernel, impl, *args)


class _FourierFunction(torch.autograd.Function):
    """``x`` (canonical layout), ``A, omega, a, b`` (canonical layout) -> eq. (2); one autograd node."""

    @staticmethod
    def forward(ctx, x, A, omega, a, b, impl):
        ctx.save_for_backward(x, A, omega, a, b)
        ctx.impl = impl
        return _run_kernel(_fourier_forward_kernel, impl, x, A, omega, a, b)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        grads = _run_kernel(_fourier_backward_kernel, ctx.impl, grad_y.contiguous(), *ctx.saved_tensors)
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


def fourier_fast(x: Tensor, A: Tensor, omega: Tensor, a: Tensor, b: Tensor, impl: str = "auto") -> Tensor:
    """Same value as :func:`fourier_reference` (module parameter layout), computed by the fast kernels."""
    y = _FourierFunction.apply(_canonical_input(x, a.dim() == 2), *_fourier_layout(A, omega, a, b), impl)
    return y.view(x.shape)


def _fourier_layout(A: Tensor, omega: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The Fourier parameters from the module layout to the kernels' canonical layout."""
    if a.dim() == 2:  # per channel: (C,) -> (C, 1), (C, rank) -> (rank, C, 1)
        return A.reshape(-1, 1), omega.reshape(-1, 1), a.t().unsqueeze(-1), b.t().unsqueeze(-1)
    # per layer: (1,) -> (1,), (rank,) -> (rank, 1)
    return A.reshape(1), omega.reshape(1), a.reshape(-1, 1), b.reshape(-1, 1)


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
    eps = _lc_eps(float(eps), torch.promote_types(weights.dtype, torch.float32), weights.device)
    y = _LinearCombinationFunction.apply(
        _canonical_input(x, per_channel), weights, eps, tuple(candidates), impl
    )
    return y.view(x.shape)
