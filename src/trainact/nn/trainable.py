"""What the trainable activation modules share: input check, choice of implementation, parameter
export, curves.

``impl`` selects the implementation of a :class:`~trainact.nn.fourier.Fourier` or
:class:`~trainact.nn.linear_combination.LinearCombination` layer (:data:`IMPLS`):

``"auto"`` (default)
    compiled kernels (:mod:`trainact.nn.kernels`); if compilation itself fails once, every
    activation of the process uses the eager kernels from then on
    (:mod:`trainact.nn.kernel_compiler` says which failures count).
``"compiled"``
    compiled kernels, errors propagate.
``"eager"``
    the same kernels run eagerly (no compilation; slower; the same formulas up to float rounding).
``"reference"``
    the reference formula with autograd (:mod:`trainact.nn.reference`; for checking; slow, stores
    every intermediate).

Shapes: an activation maps ``(N, *)`` to the same shape. With ``per_channel=True`` the parameters
have a leading channel dimension ``C`` and broadcast over dimension 1 of an ``(N, C, *)`` input
(convolution feature maps ``(N, C, H, W)`` or linear features ``(N, C)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainact.nn.kernel_compiler import record_implementation

IMPLS = ("auto", "compiled", "eager", "reference")


def check_choice(what: str, value: Any, allowed: Sequence[Any]) -> None:
    """Raise ``ValueError`` naming ``what``, ``value`` and the ``allowed`` values unless ``value``
    is one of them."""
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(map(repr, allowed))}")


def check_channels(per_channel: bool, num_channels: int | None) -> None:
    """Raise ``ValueError`` unless ``per_channel=False`` or ``num_channels`` is an int >= 1."""
    if per_channel and (not isinstance(num_channels, int) or num_channels < 1):
        raise ValueError(f"per_channel=True needs num_channels >= 1, got {num_channels!r}")


class TrainableActivation(nn.Module):
    """Shared plumbing: input shape check, implementation dispatch, parameter export, curves.

    Subclasses define ``_reference(x)`` (the formula with autograd, in the parameters' layout),
    ``_fast(x)`` (the kernels) and ``_fast_max_pool(x)`` (the kernels fused with a 2x2 max-pool), and
    set ``per_channel``, ``num_channels`` and ``impl``.
    """

    per_channel: bool
    num_channels: int | None
    impl: str
    #: Whether :meth:`max_pool` has a fused kernel (``_fast_max_pool``); the conv stages fuse only these.
    fuses_max_pool: bool = False

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
        points = x.detach().to(device=parameter.device, dtype=parameter.dtype).reshape(-1)
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
            record_implementation("reference")
            return y
        return self._fast(x)

    def max_pool(self, x: Tensor) -> Tensor:
        """``max_pool2d(self(x), 2)``: the activation followed by a 2x2 / stride 2 max-pool.

        With the fast kernels and ``x`` of shape ``(N, C, H, W)``, ``H`` and ``W`` even, both run as
        one fused kernel (:mod:`trainact.nn.pool_kernels`: less memory traffic, the backward only
        at the window maxima); otherwise (``impl="reference"``, other shapes) as the module
        followed by :func:`torch.nn.functional.max_pool2d`. Same values and gradients either way,
        up to float rounding. Forward hooks of this module do not see the fused path; the conv
        stages (:class:`trainact.nn.models.ConvStage`) fuse only modules without hooks.
        """
        if self.impl == "reference" or x.dim() != 4 or x.shape[2] % 2 or x.shape[3] % 2:
            return F.max_pool2d(self(x), 2)
        self._check_input(x)
        return self._fast_max_pool(x)

    def _reference(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _fast(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _fast_max_pool(self, x: Tensor) -> Tensor:
        raise NotImplementedError
