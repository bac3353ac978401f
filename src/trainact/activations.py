"""Trainable activation functions of the paper: Fourier series (eq. 2) and linear combination (eq. 7).

Each activation exists twice:

* a *reference* implementation (:func:`fourier_reference`, :func:`linear_combination_reference`):
  the formula written in obvious torch ops, differentiated by autograd. Tests compare against it.
* a *fast* implementation used for training: a custom :class:`torch.autograd.Function` whose
  forward and backward are each one pure, pointwise(+reduction) kernel function. The forward saves
  only its input ``x``; the backward recomputes the cheap pointwise terms (``sin``/``cos`` or the
  candidate functions) instead of storing them, and returns all parameter gradients as reductions
  from the same pass. Each kernel is ``torch.compile``-d once per process (module-level functions
  shared by every layer), which fuses it into one loop over memory; that is what makes a
  Fourier-CNN train at a useful fraction of the ReLU network's speed on a CPU (see ``trainact bench``).

``impl`` selects the implementation:

``"auto"`` (default)
    compiled kernels; if compilation fails once (no C++ compiler, unsupported platform), a warning is
    logged once and every activation of the process uses the eager kernels from then on.
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

Shapes: an activation maps ``(N, *)`` to the same shape. With ``per_channel=True`` the parameters
have a leading channel dimension ``C`` and broadcast over dimension 1 of an ``(N, C, *)`` input
(convolution feature maps ``(N, C, H, W)`` or linear features ``(N, C)``).
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

log = logging.getLogger(__name__)

IMPLS = ("auto", "compiled", "eager", "reference")
ACTIVATION_NAMES = ("relu", "fourier", "lc")
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
# input on a calibration batch (trainact.calibration measures it), k = CALIBRATION_SIGMAS. ReLU is
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


def _lc_forward_kernel(
    x: Tensor, coefficients: Tensor, candidates: tuple[str, ...]
) -> Tensor:
    dtype = _compute_dtype(x, coefficients)
    xc, c = x.to(dtype), coefficients.to(dtype)
    terms = _candidate_terms(xc, candidates)
    y = c[0] * terms[0][0]
    for i in range(1, len(candidates)):
        y = y + c[i] * terms[i][0]
    return y.to(x.dtype)


def _lc_backward_kernel(
    grad_y: Tensor, x: Tensor, coefficients: Tensor, candidates: tuple[str, ...]
) -> tuple[Tensor, Tensor]:
    dtype = _compute_dtype(x, coefficients)
    dims = _reduce_dims(x)
    xc, g, c = x.to(dtype), grad_y.to(dtype), coefficients.to(dtype)
    slope = torch.zeros_like(xc)
    grad_c = []
    for i, (value, derivative) in enumerate(_candidate_terms(xc, candidates)):
        slope = slope + c[i] * derivative
        grad_c.append((g * value).sum(dims))
    grad_coefficients = torch.stack(grad_c).reshape(coefficients.shape)
    return (g * slope).to(x.dtype), grad_coefficients.to(coefficients.dtype)


# Inductor options of the kernels. With symbolic sizes the CPU code generator cannot tell that a
# pointwise loop is long enough to split across threads and emits a serial loop (measured: the
# Fourier forward ran on one of two cores); dynamic_threads makes every loop an OpenMP loop.
COMPILE_OPTIONS = {"cpp.dynamic_threads": True}


class _KernelCompiler:
    """Compiles each kernel function once per process, and remembers a failure under ``"auto"``.

    ``dynamic=True``: sizes are symbolic from the first call, so all layers, the last partial
    batch and evaluation share a few graphs per (layout, dtype, device) instead of one graph per
    shape, which would exceed dynamo's recompile limit (8) in a single model. (Inductor still
    splits small and large tensors, above and below 4096 elements, and per-channel inputs with a
    single element per channel; about five graphs per kernel when both layouts are used.)
    """

    def __init__(self, compile_fn: Callable[..., Callable] = torch.compile):
        self.compile_fn = compile_fn
        self.compiled: dict[Callable, Callable] = {}
        self.failed = False

    def __call__(self, kernel: Callable, impl: str, *args: Any):
        if impl == "eager" or (impl == "auto" and self.failed):
            return kernel(*args)
        if kernel not in self.compiled:
            self.compiled[kernel] = self.compile_fn(
                kernel, dynamic=True, fullgraph=True, options=COMPILE_OPTIONS
            )
        if impl == "compiled":
            return self.compiled[kernel](*args)
        try:
            return self.compiled[kernel](*args)
        except Exception as exc:
            # any compiler failure (no C++ compiler, unsupported op...): fall back for good
            self.failed = True
            log.warning(
                "torch.compile of the activation kernels failed (%s: %s); "
                "using the eager kernels from now on (slower, same results)",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
            return kernel(*args)


_COMPILER = _KernelCompiler()


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
    @staticmethod
    def forward(ctx, x, coefficients, candidates, impl):
        ctx.save_for_backward(x, coefficients)
        ctx.candidates, ctx.impl = candidates, impl
        return _run_kernel(_lc_forward_kernel, impl, x, coefficients, candidates)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        x, coefficients = ctx.saved_tensors
        grad_x, grad_coefficients = _run_kernel(
            _lc_backward_kernel,
            ctx.impl,
            grad_y.contiguous(),
            x,
            coefficients,
            ctx.candidates,
        )
        return grad_x, grad_coefficients, None, None


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

    The per-candidate coefficients ``w_i / guarded(sum w)`` are formed from the tiny weight tensor
    with ordinary autograd ops (so the guard's gradient is autograd's); only the pass over ``x``
    is a custom kernel.
    """
    per_channel = weights.dim() == 2
    coefficients = weights / guarded_weight_sum(weights.sum(-1, keepdim=True), eps)
    y = _LinearCombinationFunction.apply(
        _canonical_input(x, per_channel),
        coefficients.t().unsqueeze(-1) if per_channel else coefficients,
        tuple(candidates),
        impl,
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
                return self._reference(x.to(dtype)).to(x.dtype)
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
        :func:`trainact.calibration.calibrate` measures ``r`` on a seeded batch of training images,
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
    numerator) and gradients are exact for the guarded function (eq. 8 where :math:`|s| \ge \varepsilon`;
    :math:`\partial act/\partial w_k = act_k(x)/(\pm\varepsilon)` inside the guard band). With the
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
        candidates: Sequence[str] = ("relu", "sigmoid", "tanh", "linear"),
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


# ---------------------------------------------------------------------------------------------
# Factory used by the models


def _keyword_options(cls: type) -> tuple[str, ...]:
    return tuple(
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and name != "num_channels" and p.kind is not p.VAR_KEYWORD
    )


def make_activation(name: str, num_channels: int, model_cfg: dict) -> nn.Module:
    """The activation module ``name`` (``relu``, ``fourier`` or ``lc``) for a layer of ``num_channels``.

    ``model_cfg`` keys read here (other keys belong to the model and are ignored):
    ``"fourier"``: dict of :class:`Fourier` keyword arguments; ``"lc"``: dict of
    :class:`LinearCombination` keyword arguments; ``"impl"``: default implementation for both
    (a per-activation ``"impl"`` in those dicts wins). ``num_channels`` is used with ``per_channel``.
    Raises ``ValueError`` naming an unknown activation, option or value.
    """
    _check_choice("activation", name, ACTIVATION_NAMES)
    if name == "relu":
        return nn.ReLU()
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
