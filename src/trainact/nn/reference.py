"""Reference formulas of the trainable activations: eq. (2) (Fourier series) and eq. (7) (linear
combination), written in obvious torch ops and differentiated by autograd.

They define what the activations compute: the fast kernels (:mod:`trainact.nn.kernels`) are tested
against them, ``impl="reference"`` runs them in a network, and the report evaluates saved
parameters with them (learned curves).

Shapes: an activation maps ``(N, *)`` to the same shape. Per-channel parameters have a leading
channel dimension ``C`` and broadcast over dimension 1 of an ``(N, C, *)`` input (convolution
feature maps ``(N, C, H, W)`` or linear features ``(N, C)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from trainact.nn.candidates import LC_CANDIDATES


def channel_shape(x: Tensor) -> tuple[int, ...]:
    """Shape that makes a ``(C,)`` parameter broadcast over dimension 1 of ``x``."""
    return (1, x.shape[1]) + (1,) * (x.dim() - 2)


def fourier_reference(x: Tensor, A: Tensor, omega: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """``A + sum_{n=1}^{rank} a_n cos(n omega x) + b_n sin(n omega x)`` in plain torch ops.

    Per-layer parameters: ``A``, ``omega`` of shape ``(1,)`` (or ``()``), ``a``, ``b`` of shape
    ``(rank,)``. Per-channel parameters: ``A``, ``omega`` of shape ``(C,)``, ``a``, ``b`` of shape
    ``(C, rank)``, broadcast over dimension 1 of ``x``.
    """
    if a.dim() == 2:  # per channel
        shape = channel_shape(x)
        A, omega = A.reshape(shape), omega.reshape(shape)
        coefficients = [(a[:, n].reshape(shape), b[:, n].reshape(shape)) for n in range(a.shape[1])]
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


def linear_combination_reference(x: Tensor, weights: Tensor, candidates: Sequence[str], eps: float) -> Tensor:
    """``sum_i w_i act_i(x) / guarded(sum_i w_i)`` (eq. 7) in plain torch ops.

    ``weights`` has shape ``(k,)`` (per layer) or ``(C, k)`` (per channel, broadcast over
    dimension 1 of ``x``), one weight per name in ``candidates``.
    """
    denominator = guarded_weight_sum(weights.sum(-1), eps)
    if weights.dim() == 2:
        shape = channel_shape(x)
        columns = [weights[:, i].reshape(shape) for i in range(weights.shape[1])]
        denominator = denominator.reshape(shape)
    else:
        columns = [weights[i] for i in range(weights.shape[0])]
    numerator = torch.zeros_like(x)
    for w_i, name in zip(columns, candidates, strict=True):
        numerator = numerator + w_i * LC_CANDIDATES[name](x)
    return numerator / denominator
