"""The trainable linear combination of candidate activations (paper eq. 7)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from trainact.names import LC_CANDIDATES as PAPER_LC_CANDIDATES
from trainact.nn.candidates import LC_CANDIDATES
from trainact.nn.kernels import linear_combination_fast
from trainact.nn.pool_kernels import linear_combination_max_pool_fast
from trainact.nn.reference import linear_combination_reference
from trainact.nn.trainable import (
    IMPLS,
    TrainableActivation,
    check_channels,
    check_choice,
)

# Default lower bound of |sum_i w_i| (see trainact.nn.reference.guarded_weight_sum).
LC_DEFAULT_EPS = 1e-2
# Default start: weight 1 on ReLU, 0 on the other candidates, so the LC network starts as the ReLU
# network it is compared with (the default of model.lc.init in config.yaml and its schema).
LC_DEFAULT_INIT = "one_hot:relu"


class LinearCombination(TrainableActivation):
    r"""Trainable weighted mean of candidate activations (paper eq. 7).

    .. math::
        \mathrm{act}(x) = \frac{\sum_{i=1}^{k} w_i\, \mathrm{act}_i(x)}
        {\operatorname{guard}(\sum_{i=1}^{k} w_i)},
        \qquad \operatorname{guard}(s) = \operatorname{sign}(s) \max(|s|, \varepsilon),
        \ \operatorname{sign}(0) = +1

    with trainable weights :math:`w_i` (candidates of the paper: ReLU, sigmoid, tanh, linear).

    Near-zero weight sum: eq. (7) divides by :math:`\sum_i w_i`, which training can drive through 0.
    The guard replaces :math:`|s| < \varepsilon` by :math:`\varepsilon` with the sign of :math:`s`
    (see :func:`trainact.nn.reference.guarded_weight_sum`): outputs stay finite (at most
    :math:`1/\varepsilon` times the numerator) and gradients are exact for the guarded function (eq. 8
    where :math:`|s| > \varepsilon`; :math:`\partial act/\partial w_k = act_k(x)/(\pm\varepsilon)`
    inside the guard band and at its edge :math:`|s| = \varepsilon`, as autograd gives for the
    reference). The fast kernels compute the normalisation and its gradient themselves (see
    :func:`trainact.nn.kernels._lc_backward_kernel`). With either initialisation :math:`s = 1`,
    far from the band.

    Initialisation: ``"one_hot:<name>"`` = weight 1 on that candidate, 0 elsewhere (starts as
    exactly that activation; default ``"one_hot:relu"``, :data:`LC_DEFAULT_INIT`, which needs
    ``relu`` among the candidates); ``"uniform"`` = all :math:`w_i = 1/k` (the plain average).

    Args:
        candidates: names from ``LC_CANDIDATES`` (``relu``, ``sigmoid``, ``tanh``, ``linear``).
        per_channel: one weight vector per channel (dimension 1 of the input).
        num_channels: the number of channels ``C``; required with ``per_channel=True``.
        init: ``"one_hot:<name>"`` (default ``"one_hot:relu"``) or ``"uniform"``.
        eps: smallest magnitude of the denominator (default 0.01).
        impl: ``"auto"``, ``"compiled"``, ``"eager"`` or ``"reference"`` (see :mod:`trainact.nn.trainable`).

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
        init: str = LC_DEFAULT_INIT,
        eps: float = LC_DEFAULT_EPS,
        impl: str = "auto",
    ):
        super().__init__()
        candidates = tuple(candidates)
        if not candidates:
            raise ValueError("LinearCombination needs at least one candidate")
        for name in candidates:
            check_choice("LC candidate", name, tuple(LC_CANDIDATES))
        if len(set(candidates)) != len(candidates):
            raise ValueError(f"LC candidates must be distinct, got {candidates!r}")
        check_channels(per_channel, num_channels)
        check_choice("activation impl", impl, IMPLS)
        if not float(eps) > 0:
            raise ValueError(f"LC eps must be > 0, got {eps!r}")
        self.candidates, self.eps, self.impl, self.init = (
            candidates,
            float(eps),
            impl,
            init,
        )
        self.per_channel, self.num_channels = per_channel, (num_channels if per_channel else None)

        if init == "uniform":
            initial = torch.full((len(candidates),), 1.0 / len(candidates))
        elif init.startswith("one_hot:") and init.removeprefix("one_hot:") in candidates:
            initial = torch.zeros(len(candidates))
            initial[candidates.index(init.removeprefix("one_hot:"))] = 1.0
        else:
            allowed = ["uniform"] + [f"one_hot:{name}" for name in candidates]
            check_choice("LC init", init, allowed)
        if per_channel:
            initial = initial.expand(num_channels, -1).clone()
        self.weights = nn.Parameter(initial)

    def _reference(self, x: Tensor) -> Tensor:
        return linear_combination_reference(x, self.weights, self.candidates, self.eps)

    def _fast(self, x: Tensor) -> Tensor:
        return linear_combination_fast(x, self.weights, self.candidates, self.eps, self.impl)

    fuses_max_pool = True

    def _fast_max_pool(self, x: Tensor) -> Tensor:
        return linear_combination_max_pool_fast(x, self.weights, self.candidates, self.eps, self.impl)

    def extra_repr(self) -> str:
        channels = f", num_channels={self.num_channels}" if self.per_channel else ""
        return (
            f"candidates={self.candidates}, per_channel={self.per_channel}{channels}, "
            f"init={self.init!r}, eps={self.eps}, impl={self.impl!r}"
        )
