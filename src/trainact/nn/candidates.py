"""The candidate functions of the linear combination (eq. 7): ReLU, sigmoid, tanh and the identity.

Two forms of each: :data:`LC_CANDIDATES`, plain torch functions for the reference formula
(:func:`trainact.nn.reference.linear_combination_reference`), and :func:`candidate_terms`,
``(value, derivative)`` pairs for the fast kernels (:mod:`trainact.nn.kernels`), which need the
derivative for their hand-written backward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


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


def candidate_terms(x: Tensor, candidates: tuple[str, ...]) -> list[tuple[Tensor, Tensor]]:
    """``(value, derivative)`` of each candidate at ``x``, in the form suited to the mode."""
    if torch.compiler.is_compiling():
        e = torch.exp(-x.abs())
        return [_COMPILED_CANDIDATES[name](x, e) for name in candidates]
    return [_EAGER_CANDIDATES[name](x, None) for name in candidates]
