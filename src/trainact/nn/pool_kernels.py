"""A trainable activation fused with the 2x2 max-pool that follows it in the conv stages.

``max_pool2d(act(x), 2)`` as one autograd node (:class:`_ActivationPoolFunction`), with less
memory traffic and less work than the activation's kernels followed by ``nn.MaxPool2d``:

forward
    the activation's forward kernel (:mod:`trainact.nn.kernels`) over ``x``, then the window
    selection: the pooled output, the input ``x`` at each window's maximum and the maximum's
    position in its window (int8, 0..3 in scan order). Only these two quarter-size tensors are saved;
    neither ``x`` nor ``act(x)`` is kept for the backward.
backward
    the activation's backward kernel at the selected inputs only (a quarter of the elements: the
    derivative and the parameter-gradient reductions, which are sums over the elements that reached
    the output), then the scatter of that gradient to the window positions (zeros elsewhere).

Values and gradients equal those of ``act`` followed by ``nn.MaxPool2d(2)`` up to float rounding,
including ties (the first maximum in scan order wins, as in ATen's max-pool, and a NaN wins, the
last one of a window; the pooled value of a window with a NaN is NaN in both).

The window selection and the scatter run, on the CPU, as a small C++ extension (``pool_cpp.cpp``,
built once per process with ``torch.utils.cpp_extension.load_inline`` and cached on disk by torch;
recorded as ``"cpp"`` in :func:`trainact.nn.kernel_compiler.kernel_report`): Inductor's CPU code
for them (strided loads, rows of 4 to 16 elements) is scalar and was slower than ATen's max-pool
(measured). Elsewhere (CUDA), with ``impl="eager"``, for other dtypes or if the build fails under
``"auto"``, they run as the torch-op kernels :func:`_select_kernel` and :func:`_unpool_kernel`,
compiled or eagerly as ``impl`` says, the same formulas. Needs ``(N, C, H, W)`` inputs with even
``H`` and ``W``; :meth:`trainact.nn.trainable.TrainableActivation.max_pool` takes the unfused path
otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from trainact.nn import kernels as fast_kernels
from trainact.nn.kernel_compiler import ExtensionBuilder, record_implementation
from trainact.nn.kernels import (
    _canonical_input,
    _fourier_backward_kernel,
    _fourier_forward_kernel,
    _fourier_layout,
    _lc_backward_kernel,
    _lc_eps,
    _lc_forward_kernel,
)

#: Name of the C++ extension (torch's build cache keys on it and on the source's hash).
EXTENSION_NAME = "trainact_activation_pool"
_SOURCE = Path(__file__).with_name("pool_cpp.cpp")


def _build_extension():
    from torch.utils.cpp_extension import load_inline

    return load_inline(
        name=EXTENSION_NAME,
        cpp_sources=[_SOURCE.read_text()],
        functions=["pool_select", "pool_unpool"],
        extra_cflags=["-O3", "-fopenmp"],
        extra_ldflags=["-fopenmp"],
    )


#: The process's C++ max-pool (built on first use; its failure is in ``kernel_report``).
EXTENSION = ExtensionBuilder(_build_extension)
_EXTENSION_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def _extension(x: Tensor, impl: str):
    """The C++ extension if it applies to ``x`` under ``impl`` (CPU, a supported dtype, not
    ``"eager"``) and could be built (else ``None``; under ``"compiled"`` a failed build raises)."""
    if impl == "eager" or x.device.type != "cpu" or x.dtype not in _EXTENSION_DTYPES:
        return None
    return EXTENSION.get(impl)


def _window(t: Tensor, row: int, column: int) -> Tensor:
    """Element ``(row, column)`` of every 2x2 window of ``t``, viewed as ``(N, C, Ho, 2, Wo, 2)``."""
    return t[:, :, :, row, :, column]


def _select_kernel(y6: Tensor, x6: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per 2x2 window of ``y = act(x)`` (both viewed as ``(N, C, Ho, 2, Wo, 2)``): the maximum,
    ``x`` there, and its position 0..3 in scan order (int8); first maximum, or last NaN, wins."""
    best, best_x = _window(y6, 0, 0), _window(x6, 0, 0)
    index = torch.zeros_like(best, dtype=torch.int8)
    for position, (row, column) in enumerate(((0, 1), (1, 0), (1, 1)), start=1):
        value = _window(y6, row, column)
        take = (value > best) | torch.isnan(value)
        best = torch.where(take, value, best)
        best_x = torch.where(take, _window(x6, row, column), best_x)
        index = torch.where(take, position, index)
    return best, best_x, index


def _unpool_kernel(grad: Tensor, index: Tensor) -> Tensor:
    """``grad (N, C, Ho, Wo)`` at each window's ``index``, zeros elsewhere: ``(N, C, Ho, 2, Wo, 2)``."""
    positions = torch.arange(4, device=grad.device, dtype=index.dtype).view(2, 1, 2)
    return torch.where(index[:, :, :, None, :, None] == positions, grad[:, :, :, None, :, None], 0.0)


def _select(y: Tensor, x: Tensor, impl: str) -> tuple[Tensor, Tensor, Tensor]:
    extension = _extension(x, impl)
    if extension is not None:
        result = extension.pool_select(y, x)
        record_implementation("cpp")
        return tuple(result)
    n, c, h, w = x.shape
    window_shape = (n, c, h // 2, 2, w // 2, 2)
    return fast_kernels._run_kernel(_select_kernel, impl, y.view(window_shape), x.view(window_shape))


def _unpool(grad: Tensor, index: Tensor, impl: str) -> Tensor:
    extension = _extension(grad, impl)
    if extension is not None:
        result = extension.pool_unpool(grad, index)
        record_implementation("cpp")
        return result
    n, c, h, w = grad.shape
    return fast_kernels._run_kernel(_unpool_kernel, impl, grad, index).reshape(n, c, 2 * h, 2 * w)


class _ActivationPoolFunction(torch.autograd.Function):
    """``max_pool2d(act(x), 2)`` for ``x (N, C, H, W)`` contiguous, ``H, W`` even; one autograd node.

    ``kernels``: the activation's ``(forward, backward)`` kernel functions of
    :mod:`trainact.nn.kernels` (canonical layout); ``constants``: their trailing non-tensor
    arguments (LC's ``eps`` and candidates); ``parameters``: their tensor parameters, whose
    gradients the backward kernel returns after the input's.
    """

    @staticmethod
    def forward(ctx, x, kernels, impl, per_channel, constants, *parameters):
        forward_kernel, _ = kernels
        y = fast_kernels._run_kernel(
            forward_kernel, impl, _canonical_input(x, per_channel), *parameters, *constants
        )
        pooled, x_at_max, index = _select(y.view(x.shape), x, impl)
        ctx.save_for_backward(x_at_max, index, *parameters)
        ctx.kernels, ctx.impl, ctx.per_channel, ctx.constants = kernels, impl, per_channel, constants
        return pooled

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_pooled):
        x_at_max, index, *parameters = ctx.saved_tensors
        _, backward_kernel = ctx.kernels
        grad_at_max, *grad_parameters = fast_kernels._run_kernel(
            backward_kernel,
            ctx.impl,
            _canonical_input(grad_pooled.contiguous(), ctx.per_channel),
            _canonical_input(x_at_max, ctx.per_channel),
            *parameters,
            *ctx.constants,
        )
        grad_x = _unpool(grad_at_max.view(x_at_max.shape), index, ctx.impl)
        return (grad_x, None, None, None, None, *grad_parameters)


def _check_shape(x: Tensor) -> None:
    if x.dim() != 4 or x.shape[2] % 2 or x.shape[3] % 2:
        raise ValueError(f"the fused max-pool needs (N, C, H, W) with even H and W, got {tuple(x.shape)}")


def fourier_max_pool_fast(
    x: Tensor, A: Tensor, omega: Tensor, a: Tensor, b: Tensor, impl: str = "auto"
) -> Tensor:
    """``max_pool2d(fourier_fast(x, A, omega, a, b), 2)`` (module parameter layout), fused."""
    _check_shape(x)
    kernels = (_fourier_forward_kernel, _fourier_backward_kernel)
    return _ActivationPoolFunction.apply(
        x.contiguous(), kernels, impl, a.dim() == 2, (), *_fourier_layout(A, omega, a, b)
    )


def linear_combination_max_pool_fast(
    x: Tensor, weights: Tensor, candidates: Sequence[str], eps: float, impl: str = "auto"
) -> Tensor:
    """``max_pool2d(linear_combination_fast(x, weights, candidates, eps), 2)``, fused."""
    _check_shape(x)
    eps_tensor = _lc_eps(float(eps), torch.promote_types(weights.dtype, torch.float32), weights.device)
    kernels = (_lc_forward_kernel, _lc_backward_kernel)
    constants = (eps_tensor, tuple(candidates))
    return _ActivationPoolFunction.apply(
        x.contiguous(), kernels, impl, weights.dim() == 2, constants, weights
    )
