"""Inputs shared by the tests of the trainable activations (tests/nn/): random parameters in the
modules' layout, inputs, and outputs with gradients of a weighted sum."""

from __future__ import annotations

import torch

CANDIDATES = ("relu", "sigmoid", "tanh", "linear")


def fourier_parameters(per_channel: bool, channels: int = 3, rank: int = 5, dtype=torch.float64):
    """Random Fourier parameters in the module layout, as leaf tensors requiring grad."""
    generator = torch.Generator().manual_seed(1)
    lead = (channels,) if per_channel else (1,)
    shapes = [
        lead,
        lead,
        lead[:1] + (rank,) if per_channel else (rank,),
        lead[:1] + (rank,) if per_channel else (rank,),
    ]
    A, omega, a, b = (torch.randn(shape, generator=generator, dtype=dtype) * 0.5 for shape in shapes)
    omega = omega.abs() + 0.5
    return [t.requires_grad_() for t in (A, omega, a, b)]


def lc_weights(per_channel: bool, channels: int = 3, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(2)
    shape = (channels, len(CANDIDATES)) if per_channel else (len(CANDIDATES),)
    # Sum about 1 (far from the guard band), individual weights of both signs.
    weights = torch.randn(shape, generator=generator, dtype=dtype) * 0.3 + 0.25
    return weights.requires_grad_()


def random_input(shape=(2, 3, 4, 5), dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return (torch.randn(shape, generator=generator, dtype=dtype) * 2).requires_grad_()


def grads_of(function, inputs):
    output = function(*inputs)
    weight = torch.linspace(-1, 1, output.numel(), dtype=output.dtype).reshape(output.shape)
    return output, torch.autograd.grad((output * weight).sum(), inputs)
